/**
 * An axe-core audit of every screen (sign-in, a room, a conversation) in real Chromium, light and
 * dark, desktop and phone: a serious or critical violation fails the test.
 */
import assert from "node:assert/strict";
import AxeBuilder from "@axe-core/playwright";
import type { Browser, Page } from "playwright-core";
import { browserTest, waitJoined } from "./browser_harness.ts";
import { TestClient } from "./helpers.ts";

/** The impacts that fail an audit; minor and moderate ones are printed only. */
const FAILING_IMPACTS = ["serious", "critical"];

const LAYOUTS = [
  { layout: "desktop", viewport: { width: 1280, height: 800 } },
  { layout: "phone", viewport: { width: 390, height: 800 } },
] as const;
const SCHEMES = ["light", "dark"] as const;

/** Every combination of layout and colour scheme, each with its own context. */
function* variants(browser: Browser) {
  for (const { layout, viewport } of LAYOUTS) {
    for (const colorScheme of SCHEMES) {
      // axe-core is injected as a string, which the page's CSP (no eval) refuses; the audit only
      // reads the DOM, so lifting the CSP for it changes nothing it looks at.
      yield {
        label: `${layout} ${colorScheme}`,
        context: browser.newContext({ viewport, colorScheme, bypassCSP: true }),
      };
    }
  }
}

/** Audits the page; returns one line per failing violation, and prints the rest. */
async function audit(page: Page, where: string): Promise<string[]> {
  const result = await new AxeBuilder({ page }).analyze();
  const failing: string[] = [];
  for (const v of result.violations) {
    const line = `${where}: ${v.id} (${v.impact}) at ${
      v.nodes.map((n) => n.target.join(" ")).join(", ")
    }`;
    if (FAILING_IMPACTS.includes(v.impact ?? "")) failing.push(line);
    else console.log(`axe, not failing: ${line}`);
  }
  assert.ok(result.passes.length > 15, `${where}: axe ran only ${result.passes.length} rules`);
  return failing;
}

/** The ids of every violation, whatever its impact. */
async function violationIds(page: Page): Promise<string[]> {
  return (await new AxeBuilder({ page }).analyze()).violations.map((v) => v.id);
}

browserTest(
  "axe finds nothing serious on the sign-in, room and conversation screens, light and dark, desktop and phone",
  async (h) => {
    const bob = await TestClient.connect(h.server.wsUrl, "bob");
    const failing: string[] = [];
    try {
      await bob.request({ type: "join", room: "general" }, (m) => m.type === "joined");
      for (const v of variants(h.browser)) {
        const context = await v.context;
        const page = await context.newPage();
        await page.goto(h.server.url);
        await page.getByLabel("Name").waitFor();
        failing.push(...await audit(page, `${v.label} sign-in`));
        const name = `alice_${v.label.replace(" ", "_")}`;
        await page.getByLabel("Name").fill(name);
        await page.getByRole("button", { name: "Join chat" }).click();
        await waitJoined(page, "general");
        await page.locator("#members .entry", { hasText: "bob" }).waitFor({ state: "attached" });
        failing.push(...await audit(page, `${v.label} room`));

        const menu = page.getByRole("button", { name: "Rooms and people" });
        if (await menu.isVisible()) {
          await menu.click();
          failing.push(...await audit(page, `${v.label} room, sidebar open`));
        }
        await page.locator("#members button", { hasText: "bob" }).click();
        await page.locator("#view-title", { hasText: "bob" }).waitFor();
        failing.push(...await audit(page, `${v.label} conversation`));
        await context.close();
      }
    } finally {
      await bob.close();
    }
    assert.deepEqual(failing, []);
  },
);

browserTest("The sign-in screen has a main landmark and nothing outside landmarks", async (h) => {
  const page = await (await h.browser.newContext({ bypassCSP: true })).newPage();
  await page.goto(h.server.url);
  await page.getByLabel("Name").waitFor();
  const ids = await violationIds(page);
  assert.deepEqual(ids.filter((id) => id === "landmark-one-main" || id === "region"), []);
  assert.deepEqual(await page.getByRole("main").count(), 1);
});

for (
  const [mode, args] of [
    ["password", ["--password", "s3cret"]],
    ["token", ["--jwt-secret", "k3y"]],
  ] as const
) {
  browserTest(
    `axe finds nothing serious on the ${mode} sign-in screen, light and dark, desktop and phone`,
    async (h) => {
      const failing: string[] = [];
      for (const v of variants(h.browser)) {
        const context = await v.context;
        const page = await context.newPage();
        await page.goto(h.server.url);
        await page.locator(mode === "password" ? "#login-password" : "#login-token").waitFor();
        failing.push(...await audit(page, `${v.label} ${mode} sign-in`));
        // With the error line showing too.
        await page.getByRole("button", { name: "Join chat" }).click();
        await page.locator("#login-error:not(:empty)").waitFor();
        failing.push(...await audit(page, `${v.label} ${mode} sign-in, with an error`));
        await context.close();
      }
      assert.deepEqual(failing, []);
    },
    ["--port", "0", "--data", ":memory:", ...args],
  );
}
