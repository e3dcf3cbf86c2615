/**
 * Takes the screenshots in docs/screenshots/: desktop (1280x800) and mobile (390x800), light and
 * dark. Run by hand: `deno run -A tests/screenshots.ts`. It starts the real server, seeds a short
 * conversation with test clients, and drives Debian's Chromium; it never downloads a browser.
 */
import { chromium } from "playwright-core";
import { spawnServer, TestClient } from "./helpers.ts";

const OUT = new URL("../docs/screenshots/", import.meta.url);
const LAUNCH = {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic"],
};

await Deno.mkdir(OUT, { recursive: true });
const browser = await chromium.launch(LAUNCH);
try {
  for (const scheme of ["light", "dark"] as const) {
    await shoot("desktop", { width: 1280, height: 800 }, scheme);
    await shoot("mobile", { width: 390, height: 800 }, scheme);
  }
  console.log(`Screenshots written to ${OUT.pathname}`);
} finally {
  await browser.close();
}

/** Seeds a fresh server with a short conversation and photographs alice's view of it. */
async function shoot(
  kind: string,
  viewport: { width: number; height: number },
  colorScheme: "light" | "dark",
) {
  const server = await spawnServer(["--port", "0", "--data", ":memory:", "--rate-limit", "off"]);
  const clients: TestClient[] = [];
  try {
    const bob = await TestClient.connect(server.wsUrl, "bob");
    const carol = await TestClient.connect(server.wsUrl, "carol");
    clients.push(bob, carol);
    for (const c of clients) {
      await c.request({ type: "join", room: "general" }, (m) => m.type === "joined");
      await c.request({ type: "join", room: "design" }, (m) => m.type === "joined");
    }
    const say = (c: TestClient, text: string, room = "general") =>
      c.request({ type: "say", room, text }, (m) => m.type === "message" && m.text === text);
    await say(bob, "Morning all! The staging deploy finished a few minutes ago.");
    await say(bob, "Release notes are here: https://example.com/releases/0.1");
    await say(carol, "Nice. I checked the login flow on my phone and it works.");
    await say(
      carol,
      "Two small things:\n- the avatar colours look great\n- the typing hint is subtle",
    );

    const context = await browser.newContext({ viewport, colorScheme });
    const page = await context.newPage();
    await page.goto(server.url);
    if (kind === "desktop" && colorScheme === "light") {
      await page.getByLabel("Name").waitFor();
      await page.screenshot({ path: "/tmp/login.png" });
    }
    await page.getByLabel("Name").fill("alice");
    await page.getByRole("button", { name: "Join chat" }).click();
    await page.locator("#view-sub", { hasText: "online" }).waitFor();
    if (kind === "desktop") {
      await page.getByLabel("Room", { exact: true }).fill("design");
      await page.getByLabel("Room", { exact: true }).press("Enter");
      await page.locator("#view-sub", { hasText: "online" }).waitFor();
      await page.locator("#rooms .entry", { hasText: "general" }).click();
    }
    await say(bob, "Welcome @alice! Have a look at the notes above when you can.");
    await page.getByLabel("Message", { exact: true }).fill("Thanks! Reading them now.");
    await page.getByLabel("Message", { exact: true }).press("Enter");
    await page.locator("#messages .text", { hasText: "Reading them now" }).waitFor();
    await say(carol, "Mockups for the sidebar are up in #design", "design");
    await say(carol, "@alice, a second version has badges", "design");
    await carol.request(
      { type: "dm", to: "alice", text: "Got a minute later today?" },
      (m) => m.type === "dm",
    );
    bob.send({ type: "typing", room: "general" });
    await page.locator("#typing", { hasText: "typing" }).waitFor();
    await page.mouse.move(viewport.width - 1, 1); // away from anything with a hover style
    await page.screenshot({ path: new URL(`${kind}-${colorScheme}.png`, OUT).pathname });
    await context.close();
  } finally {
    for (const c of clients) await c.close();
    await server.stop();
  }
}
