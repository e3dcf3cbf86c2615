/**
 * The browser client in a real browser: Debian's Chromium driven by playwright-core against the
 * real server (`main.ts` as a child process), with tests/browser_harness.ts.
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { assets } from "../http/assets.ts";
import { eventually, type SpawnedServer, spawnServer, TestClient } from "./helpers.ts";
import {
  browserTest,
  HAVE_CHROMIUM,
  LAUNCH,
  messageTexts,
  openChat,
  say,
  waitJoined,
  waitMessage,
  watch,
} from "./browser_harness.ts";
import { redisServerVersion } from "../scripts/redis_process.ts";
import { startRedis } from "./redis_server.ts";
import { startServer } from "./server_fixture.ts";

/**
 * The few browser globals used by the functions that run inside the page. Deno type-checks this
 * file without the DOM library, and string expressions are no way out: the page's CSP forbids eval.
 */
declare const document: {
  title: string;
  hidden: boolean;
  getElementById(id: string): { textContent: string | null; getBoundingClientRect(): DOMRect };
  querySelector(selector: string): unknown;
  querySelectorAll(selector: string): Iterable<{ textContent: string | null }>;
  dispatchEvent(event: Event): boolean;
};
declare function getComputedStyle(element: unknown): { whiteSpace: string; visibility: string };
declare const localStorage: { getItem(key: string): string | null };
interface DOMRect {
  left: number;
}

/** The multi-instance test needs redis-server as well; without it that test is ignored, said once. */
const HAVE_REDIS = await redisServerVersion() !== null;
if (!HAVE_REDIS) {
  console.log("browser_test.ts: the multi-instance test is ignored: no redis-server on PATH.");
}

/**
 * Page, scripts and styles as served must stay under this many bytes, uncompressed ("72 KB"): 60 KB
 * until accounts (issue 15) brought many tabs per account (a tab id, the account's rooms, `left`),
 * 61 KB until the account's own password, sessions and sign-out (the account dialog, account.js)
 * and read markers kept by the server (unread across devices, the "new since you left" line).
 */
const UI_BUDGET_BYTES = 72_000;

Deno.test("UI assets: page, scripts and styles stay under 72 KB", () => {
  const bodies = new Set<string>();
  for (const [path, asset] of assets) if (path !== "/favicon.svg") bodies.add(asset.body);
  let bytes = 0;
  for (const body of bodies) bytes += new TextEncoder().encode(body).length;
  assert.ok(bytes < UI_BUDGET_BYTES, `UI is ${bytes} bytes`);
  // Every file under static/ is embedded, and every module the page imports is served.
  for (const entry of Deno.readDirSync(new URL("../static/", import.meta.url))) {
    assert.ok(assets.has(`/${entry.name}`), `static/${entry.name} is missing from assets.ts`);
  }
  for (const [path, asset] of assets) {
    for (const m of asset.body.matchAll(/from "\.(\/[a-z]+\.js)"/g)) {
      assert.deepEqual(
        assets.has(m[1]),
        true,
        `${path} imports ${m[1]}, which is not in assets.ts`,
      );
    }
  }
});

browserTest("Two people chat: messages, typing, presence and delivery", async (h) => {
  const alice = await h.open("alice");
  const bob = await h.open("bob");
  await alice.page.locator("#messages .sys", { hasText: "bob joined" }).waitFor();
  // Both see each other in the member list, with an online dot.
  await alice.page.locator("#members .entry", { hasText: "bob" }).locator(".dot.on").waitFor();

  await say(alice.page, "hi bob\nsecond line");
  await waitMessage(bob.page, "hi bob\nsecond line");
  await waitMessage(alice.page, "hi bob\nsecond line");
  assert.deepEqual(
    await alice.page.locator("#pending li").count(),
    0,
    "echo clears the pending row",
  );

  await bob.page.getByLabel("Message", { exact: true }).pressSequentially("hey al");
  await alice.page.locator("#typing", { hasText: "bob is typing…" }).waitFor();
  await bob.page.getByLabel("Message", { exact: true }).press("Enter");
  await waitMessage(alice.page, "hey al");
  // A message from bob clears his typing notice at once; otherwise it fades after about 3 s.
  assert.deepEqual(await alice.page.locator("#typing").textContent(), "");
  await bob.page.waitForTimeout(2100); // the server relays one notice per 2 s
  await bob.page.getByLabel("Message", { exact: true }).pressSequentially("and");
  await alice.page.locator("#typing", { hasText: "bob is typing…" }).waitFor();
  const shown = Date.now();
  await alice.page.waitForFunction(() => document.getElementById("typing").textContent === "");
  const faded = Date.now() - shown;
  assert.ok(faded > 2000 && faded < 4500, `typing notice faded after ${faded} ms`);
  await bob.page.getByLabel("Message", { exact: true }).fill("");

  // Shift+Enter adds a line instead of sending.
  const box = alice.page.getByLabel("Message", { exact: true });
  await box.fill("one");
  await box.press("Shift+Enter");
  await box.pressSequentially("two");
  assert.deepEqual(await box.inputValue(), "one\ntwo");
  await box.press("Enter");
  await waitMessage(bob.page, "one\ntwo");

  // Line breaks survive rendering, and messages in one minute from one sender form one group.
  const ws = await bob.page.evaluate(() =>
    getComputedStyle(document.querySelector("#messages .text")).whiteSpace
  );
  assert.deepEqual(ws, "pre-wrap");
  await say(alice.page, "three");
  await waitMessage(bob.page, "three");
  const texts = await messageTexts(bob.page);
  assert.deepEqual(texts, ["hi bob\nsecond line", "hey al", "one\ntwo", "three"]);
  // A new sender starts a group (avatar and name); the same sender in the same minute does not.
  const rows = bob.page.locator("#messages .msg");
  const minutes = (await rows.locator("time").evaluateAll((ts) =>
    ts.map((t) =>
      Math.floor(Date.parse(t.getAttribute("datetime") ?? "") / 60_000)
    )
  )).slice(-2);
  const starts = await rows.evaluateAll((rs) => rs.map((r) => r.classList.contains("start")));
  assert.deepEqual(starts.slice(0, 3), [true, true, true]);
  assert.deepEqual(starts[3], minutes[0] !== minutes[1]);

  await bob.page.context().close();
  await alice.page.locator("#messages .sys", { hasText: "bob left" }).waitFor();
  assert.deepEqual([...alice.problems, ...bob.problems], []);
});

browserTest("A direct message reaches only the person it is for", async (h) => {
  const alice = await h.open("alice");
  const bob = await h.open("bob");
  const carol = await TestClient.connect(h.server.wsUrl, "carol");
  try {
    await carol.request({ type: "join", room: "general" }, (m) => m.type === "joined");
    await alice.page.locator("#members button", { hasText: "bob" }).click();
    await alice.page.locator("#view-title", { hasText: "bob" }).waitFor();
    await say(alice.page, "psst, bob");
    await waitMessage(alice.page, "psst, bob");

    // Bob gets a conversation with an unread badge; opening it shows the message.
    const conv = bob.page.locator("#dms .entry", { hasText: "alice" });
    await conv.locator(".count", { hasText: "1" }).waitFor();
    await conv.click();
    await waitMessage(bob.page, "psst, bob");
    await say(bob.page, "hi alice");
    await waitMessage(alice.page, "hi alice");

    // DMs never show in the room and never reach a third person.
    await alice.page.locator("#rooms .entry", { hasText: "general" }).click();
    await waitJoined(alice.page, "general");
    assert.deepEqual(await messageTexts(alice.page), []);
    assert.deepEqual(carol.messages.filter((m) => m.type === "dm"), []);
    assert.deepEqual([...alice.problems, ...bob.problems], []);
  } finally {
    await carol.close();
  }
});

browserTest("Joining and leaving a room", async (h) => {
  const alice = await h.open("alice");
  const bob = await TestClient.connect(h.server.wsUrl, "bob");
  try {
    await bob.request({ type: "join", room: "random" }, (m) => m.type === "joined");
    await bob.request(
      { type: "say", room: "random", text: "earlier" },
      (m) => m.type === "message",
    );

    await alice.page.getByLabel("Room", { exact: true }).fill("Random");
    await alice.page.getByRole("button", { name: "Join", exact: true }).click();
    await waitJoined(alice.page, "random");
    await waitMessage(alice.page, "earlier");
    await bob.waitFor((m) => m.type === "join" && m.room === "random" && m.user === "alice");
    await alice.page.locator("#members .entry", { hasText: "bob" }).waitFor();

    // A name the server would refuse is caught before sending.
    await alice.page.getByLabel("Room", { exact: true }).fill("no spaces!");
    await alice.page.getByRole("button", { name: "Join", exact: true }).click();
    await alice.page.locator("#join-error", { hasText: "Cannot join" }).waitFor();

    await alice.page.getByRole("button", { name: "Leave random" }).click();
    await bob.waitFor((m) => m.type === "leave" && m.room === "random" && m.user === "alice");
    await waitJoined(alice.page, "general");
    assert.deepEqual(await alice.page.locator("#rooms .name").allTextContents(), ["general"]);

    // The open rooms are remembered: a reload rejoins general only.
    await alice.page.reload();
    await waitJoined(alice.page, "general");
    assert.deepEqual(await alice.page.locator("#rooms .name").allTextContents(), ["general"]);
    assert.deepEqual(alice.problems, []);
  } finally {
    await bob.close();
  }
});

browserTest("Unread counts, mention badge and title", async (h) => {
  const alice = await h.open("alice");
  const bob = await TestClient.connect(h.server.wsUrl, "bob");
  try {
    await bob.request({ type: "join", room: "general" }, (m) => m.type === "joined");
    await alice.page.getByLabel("Room", { exact: true }).fill("side");
    await alice.page.getByLabel("Room", { exact: true }).press("Enter");
    await waitJoined(alice.page, "side");

    for (const text of ["one", "two", "hey @alice, look"]) {
      await bob.request({ type: "say", room: "general", text }, (m) => m.type === "message");
    }
    const general = alice.page.locator("#rooms li", { hasText: "general" });
    await general.locator(".count", { hasText: "3" }).waitFor();
    await general.locator(".badge.at").waitFor({ state: "visible" });
    assert.deepEqual(await alice.page.title(), "(3) Chat");

    await general.locator(".entry").click();
    await waitMessage(alice.page, "hey @alice, look");
    assert.deepEqual(await general.locator(".count").textContent(), "");
    assert.deepEqual(await alice.page.title(), "Chat");
    // The mention of alice is highlighted for alice.
    const mention = alice.page.locator("#messages .mentioned .mention.me");
    assert.deepEqual(await mention.textContent(), "@alice");

    // While the tab is hidden, new messages in the open room count too.
    await alice.page.evaluate(() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await bob.request(
      { type: "say", room: "general", text: "you there?" },
      (m) => m.type === "message",
    );
    await alice.page.waitForFunction(() => document.title === "(1) Chat");
    assert.deepEqual(alice.problems, []);
  } finally {
    await bob.close();
  }
});

browserTest("Untrusted text renders as inert text", async (h) => {
  const alice = await h.open("alice");
  const bob = await TestClient.connect(h.server.wsUrl, "bob");
  const payloads = [
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "[click](javascript:alert(1)) <a href=javascript:alert(1)>x</a>",
    "<script>alert(1)</script> data:text/html,<b>x</b>",
    "see https://example.com/a?b=<img>&c=1 and JavaScript://%0aalert(1)",
  ];
  try {
    await bob.request({ type: "join", room: "general" }, (m) => m.type === "joined");
    for (const text of payloads) {
      await bob.request({ type: "say", room: "general", text }, (m) => m.type === "message");
    }
    await waitMessage(alice.page, payloads.at(-1)!);
    assert.deepEqual(await messageTexts(alice.page), payloads);
    const log = alice.page.locator("#log");
    assert.deepEqual(await log.locator("img, script").count(), 0);
    const hrefs = await log.locator("a").evaluateAll((as) =>
      as.map((a) => [a.getAttribute("href"), a.getAttribute("rel"), a.getAttribute("target")])
    );
    assert.deepEqual(hrefs, [["https://example.com/a?b=", "noopener noreferrer", "_blank"]]);
    await alice.page.waitForTimeout(300); // give any handler that slipped through time to fire
    assert.deepEqual(alice.problems, []);
  } finally {
    await bob.close();
  }
});

browserTest(
  "Scrolling to the top loads older messages without jumping",
  async (h) => {
    const seeder = await TestClient.connect(h.server.wsUrl, "seeder");
    try {
      await seeder.request({ type: "join", room: "general" }, (m) => m.type === "joined");
      for (let i = 1; i <= 120; i++) seeder.send({ type: "say", room: "general", text: `m${i}` });
      await seeder.waitFor((m) => m.type === "message" && m.text === "m120", 15_000);
    } finally {
      await seeder.close();
    }
    const alice = await h.open("alice");
    const page = alice.page;
    await waitMessage(page, "m120");
    assert.deepEqual((await messageTexts(page)).length, 50, "a join shows the last 50");
    const log = page.locator("#log");
    await log.evaluate((e) => e.scrollTop = 0);
    await waitMessage(page, "m70");
    await page.waitForFunction(() => document.getElementById("log-top").textContent === "");
    // The message that was at the top is still where the reader left it, not pushed away.
    const scrollTop = await log.evaluate((e) => e.scrollTop);
    assert.ok(scrollTop > 500, `scrollTop is ${scrollTop}`);
    const top = await page.locator("#messages .text", { hasText: /^m71$/ }).boundingBox();
    assert.ok(Math.abs((top?.y ?? 0) - 100) < 120, `m71 is at y=${top?.y}`);
    // Keep going back to the first message.
    for (let i = 0; i < 5 && !(await messageTexts(page)).includes("m1"); i++) {
      await log.evaluate((e) => e.scrollTop = 0);
      await page.waitForTimeout(300);
    }
    await page.locator("#log-top", { hasText: "This is the start of #general." }).waitFor();
    const texts = await messageTexts(page);
    assert.deepEqual(texts.length, 120);
    assert.deepEqual(texts, Array.from({ length: 120 }, (_, i) => `m${i + 1}`));

    // Scrolled up, a new message does not pull the reader down; a pill offers to.
    const pill = page.getByRole("button", { name: "New messages" });
    const bob = await TestClient.connect(h.server.wsUrl, "bob");
    try {
      await bob.request({ type: "join", room: "general" }, (m) => m.type === "joined");
      const before = await log.evaluate((e) => e.scrollTop);
      await bob.request(
        { type: "say", room: "general", text: "news" },
        (m) => m.type === "message",
      );
      await waitMessage(page, "news");
      await pill.waitFor();
      assert.deepEqual(await log.evaluate((e) => e.scrollTop), before);
      await pill.click();
      await pill.waitFor({ state: "hidden" });
      // At the bottom, the log stays pinned there as messages arrive.
      await bob.request(
        { type: "say", room: "general", text: "more news" },
        (m) => m.type === "message",
      );
      await waitMessage(page, "more news");
      const gap = await log.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight);
      assert.ok(gap < 5, `${gap}px from the bottom`);
      assert.deepEqual(await pill.isVisible(), false);
    } finally {
      await bob.close();
    }
    assert.deepEqual(alice.problems, []);
  },
  ["--port", "0", "--data", ":memory:", "--rate-limit", "off"],
);

/** A port nobody listens on now (the server takes it after a restart). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** What a restart test gets: a browser, and a server it may stop and start again on one port. */
interface RestartHarness {
  browser: Browser;
  /** The server running now (a new process after each start). */
  readonly server: SpawnedServer;
  port: number;
  /** Stops the server with SIGTERM, which closes every socket with 1001 first. */
  stop(): Promise<void>;
  /** Starts the server again on the same port and data file. */
  start(): Promise<void>;
}

/**
 * Registers a browser test whose server keeps history in a file, so it can be stopped and started
 * again on the same port without the pages' seqs running ahead of the new process.
 */
function restartTest(
  name: string,
  fn: (h: RestartHarness) => Promise<void>,
  extraArgs: string[] = [],
) {
  Deno.test({
    name,
    ignore: !HAVE_CHROMIUM,
    async fn() {
      const dir = await Deno.makeTempDir();
      const port = freePort();
      const args = ["--port", String(port), "--data", `${dir}/chat.db`, ...extraArgs];
      let server = await spawnServer(args);
      let browser: Browser | undefined;
      try {
        browser = await chromium.launch(LAUNCH);
        await fn({
          browser,
          get server() {
            return server;
          },
          port,
          async stop() {
            await server.stop();
          },
          async start() {
            server = await spawnServer(args);
          },
        });
      } finally {
        await browser?.close();
        await server.stop();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/** The banner's words; "" when there are none. */
async function bannerText(page: Page): Promise<string> {
  return await page.locator("#banner > span").textContent() ?? "";
}

/** A countdown the banner showed, and when (the page's clock, which is this machine's). */
interface Countdown {
  seconds: number;
  at: number;
}

/**
 * Waits until the banner counts down at least `min` seconds to the next attempt. The page's own
 * timer cannot reconnect before `at + (seconds - 1) s`, so a reconnect sooner has another cause.
 */
async function waitCountdown(page: Page, min: number): Promise<Countdown> {
  const found = await page.waitForFunction(
    (least) => {
      const text = document.getElementById("banner").textContent ?? "";
      const seconds = Number(/Reconnecting in (\d+) s/.exec(text)?.[1] ?? 0);
      return seconds >= least && { seconds, at: Date.now() };
    },
    min,
    { timeout: 15_000 },
  );
  return await found.jsonValue() as Countdown;
}

/** Waits until the page is connected again (the banner goes) before `countdown` could run out. */
async function waitOnlineBefore(page: Page, countdown: Countdown) {
  const deadline = countdown.at + (countdown.seconds - 1) * 1000;
  await page.locator("#banner").waitFor({
    state: "hidden",
    timeout: Math.max(1, deadline - Date.now()),
  });
}

restartTest(
  "After a server restart both pages reconnect and a message written offline arrives once",
  async (h) => {
    const alice = await openChat(h.browser, h.server.url, "alice");
    const bob = await openChat(h.browser, h.server.url, "bob");
    await say(alice.page, "before the restart");
    await waitMessage(bob.page, "before the restart");

    await h.stop();
    for (const p of [alice.page, bob.page]) {
      await p.locator("#banner", { hasText: /Reconnecting|Connection lost/ }).waitFor();
    }
    await say(alice.page, "written while down");
    await alice.page.locator("#pending li", { hasText: "Waiting for connection" }).waitFor();

    await h.start();
    for (const p of [alice.page, bob.page]) {
      await p.locator("#banner").waitFor({ state: "hidden", timeout: 20_000 });
      await waitMessage(p, "written while down");
    }
    await say(bob.page, "after the restart");
    await waitMessage(alice.page, "after the restart");
    for (const p of [alice.page, bob.page]) {
      const texts = await messageTexts(p);
      assert.deepEqual(texts.filter((t) => t === "written while down").length, 1);
      assert.deepEqual(texts.filter((t) => t === "before the restart").length, 1);
      assert.deepEqual(await p.locator("#pending li").count(), 0);
    }
    assert.deepEqual([...alice.problems, ...bob.problems], []);
  },
);

restartTest(
  "When the server goes away the banner says so and counts down, and it goes once the server is back",
  async (h) => {
    const alice = await openChat(h.browser, h.server.url, "alice");
    const page = alice.page;
    const banner = page.getByRole("status");
    const retry = page.getByRole("button", { name: "Retry now" });
    assert.deepEqual(await banner.isHidden(), true);

    await h.stop();
    await page.locator("#banner > span", { hasText: /^Connection lost\. Reconnecting in \d+ s…$/ })
      .waitFor();
    await retry.waitFor();
    // Who is online is unknown while disconnected: no green dots, no stale count.
    assert.deepEqual(await page.locator("#view-sub").textContent(), "Not connected");
    assert.deepEqual(await page.locator("#members .dot.on").count(), 0);
    // The number counts down between attempts (each attempt only ever raises it).
    const { seconds } = await waitCountdown(page, 2);
    await page.waitForFunction(
      (from) => {
        const text = document.getElementById("banner").textContent ?? "";
        return Number(/Reconnecting in (\d+) s/.exec(text)?.[1] ?? from) < from;
      },
      seconds,
      { timeout: 5000 },
    );

    await h.start();
    await banner.waitFor({ state: "hidden", timeout: 20_000 });
    assert.deepEqual(await bannerText(page), "");
    assert.deepEqual(await retry.isHidden(), true);
    await page.locator("#view-sub", { hasText: "1 online" }).waitFor();
    assert.deepEqual(await page.locator("#members .dot.on").count(), 1);
    await say(page, "back again");
    await waitMessage(page, "back again");
    assert.deepEqual(await page.locator("#pending li").count(), 0);
    assert.deepEqual(alice.problems, []);
  },
);

restartTest(
  "Without a network the banner says the page is offline, and it reconnects as soon as the network is back",
  async (h) => {
    const alice = await openChat(h.browser, h.server.url, "alice");
    const page = alice.page;
    await h.stop();
    await say(page, "written while away");
    await page.locator("#pending li", { hasText: "Waiting for connection…" }).waitFor();
    const countdown = await waitCountdown(page, 4);
    await page.context().setOffline(true);
    await page.getByRole("status").filter({ hasText: "You are offline" }).waitFor();
    assert.deepEqual(
      await bannerText(page),
      "You are offline; messages will go out when you are back.",
    );
    // Nothing to retry without a network.
    assert.deepEqual(await page.getByRole("button", { name: "Retry now" }).isHidden(), true);

    await h.start();
    await page.context().setOffline(false);
    // Sooner than the countdown allows: the network's return, not the timer, reconnected it.
    await waitOnlineBefore(page, countdown);
    await waitMessage(page, "written while away");
    assert.deepEqual(await page.locator("#pending li").count(), 0);
    assert.deepEqual(alice.problems, []);
  },
);

restartTest(
  "A message written while the server is down is still queued after a reload and is delivered once when it is back",
  async (h) => {
    const alice = await openChat(h.browser, h.server.url, "alice");
    const page = alice.page;
    await say(page, "before");
    await waitMessage(page, "before");
    const outbox = () => page.evaluate(() => localStorage.getItem("chat.outbox"));
    assert.deepEqual(await outbox(), null);

    await h.stop();
    await page.locator("#banner", { hasText: "Connection lost" }).waitFor();
    await say(page, "written while down");
    const pending = page.locator("#pending li");
    await pending.filter({ hasText: "Waiting for connection…" }).waitFor();
    const stored = JSON.parse(await outbox() ?? "[]");
    assert.deepEqual(stored.map((e: { text: string }) => e.text), ["written while down"]);

    {
      // A reload needs something that serves the page. This stands in for the stopped server: the
      // same handler, but its socket takes nobody (HTTP 503), so the page still cannot connect.
      await using _host = await startServer({ port: h.port, maxConnections: 0 });
      await page.reload();
      await pending.filter({ hasText: "Waiting for connection…" }).waitFor({ timeout: 10_000 });
      assert.deepEqual(await pending.locator(".text").allTextContents(), ["written while down"]);
      assert.deepEqual(await messageTexts(page), []);
      assert.match(
        await bannerText(page),
        /^(Connecting…|Connection lost\. Reconnecting in \d+ s…)$/,
      );
    }

    await h.start();
    await waitMessage(page, "written while down");
    await pending.first().waitFor({ state: "detached" });
    assert.deepEqual(await messageTexts(page), ["before", "written while down"]);
    assert.deepEqual(await outbox(), null);
    // The server stored it once.
    const carol = await TestClient.connect(h.server.wsUrl, "carol");
    try {
      const joined = await carol.request(
        { type: "join", room: "general" },
        (m) => m.type === "joined",
      );
      assert.deepEqual(
        joined.history.map((m: { text: string }) => m.text),
        ["before", "written while down"],
      );
    } finally {
      await carol.close();
    }
    assert.deepEqual(alice.problems, []);
  },
);

browserTest(
  "Retry now in the banner reconnects at once instead of waiting out the countdown",
  async (h) => {
    // The server takes one connection per address, and a blocker holds it: the page's attempts get
    // HTTP 429 until the blocker leaves, and then the server lets the page in at once.
    const blocker = await TestClient.connect(h.server.wsUrl, "blocker");
    try {
      const page = await (await h.browser.newContext()).newPage();
      const chat = watch(page);
      await page.goto(h.server.url);
      await page.getByLabel("Name").fill("alice");
      await page.getByRole("button", { name: "Join chat" }).click();
      const countdown = await waitCountdown(page, 4);
      const retry = page.getByRole("button", { name: "Retry now" });
      assert.deepEqual(await retry.isVisible(), true);

      await blocker.close();
      await eventually("the server has let the blocker go", async () => {
        const health = await (await fetch(new URL("healthz", h.server.url))).json();
        return health.connections === 0;
      });
      await retry.click();
      await waitOnlineBefore(page, countdown);
      await waitJoined(page, "general");
      assert.deepEqual(await retry.isHidden(), true);
      assert.deepEqual(chat.problems, []);
    } finally {
      await blocker.close();
    }
  },
  ["--port", "0", "--data", ":memory:", "--max-connections-per-ip", "1"],
);

/** The rate of the next test: one message every 2 s, two at once. */
const TIGHT_RATE = "0.5/s,2";
const TIGHT_REFILL_MS = 2000;

browserTest(
  "A message refused for sending too fast says so in plain words, stays on the page, and Retry sends it",
  async (h) => {
    const alice = await h.open("alice");
    const page = alice.page;
    const bob = await TestClient.connect(h.server.wsUrl, "bob");
    try {
      await bob.request({ type: "join", room: "general" }, (m) => m.type === "joined");
      // Three at once: the burst takes two, the third is refused.
      for (const text of ["first", "second", "third"]) await say(page, text);
      const refused = page.locator("#pending li");
      const words = "you are sending too fast; wait a moment.";
      await refused.filter({ hasText: `Not sent: ${words}` }).waitFor();
      // The refusal comes straight back; the two accepted ones are echoed after their commit.
      await waitMessage(page, "second");
      assert.deepEqual(await refused.locator(".text").allTextContents(), ["third"]);
      assert.deepEqual(
        await refused.getByRole("button").allTextContents(),
        ["Retry", "Discard"],
      );
      assert.deepEqual(
        await page.locator("#composer-error").textContent(),
        `Message not sent: ${words}`,
      );
      assert.deepEqual(await page.locator("#composer-error").getAttribute("role"), "alert");
      assert.deepEqual((await page.locator("body").innerText()).includes("rate_limited"), false);
      assert.deepEqual(await messageTexts(page), ["first", "second"]);

      // A reload keeps the refusal: the message still waits for Retry and does not go by itself,
      // even once the limit would allow it (waiting a moment, as the words ask).
      await page.reload();
      await waitJoined(page, "general");
      await refused.filter({ hasText: `Not sent: ${words}` }).waitFor();
      assert.deepEqual(await refused.locator(".text").allTextContents(), ["third"]);
      await page.waitForTimeout(TIGHT_REFILL_MS + 200);
      const heard = () => bob.messages.filter((m) => m.type === "message").map((m) => m.text);
      assert.deepEqual(heard(), ["first", "second"], "sent again without Retry");
      await refused.getByRole("button", { name: "Retry" }).click();
      await refused.first().waitFor({ state: "detached", timeout: 10_000 });
      await waitMessage(page, "third");
      assert.deepEqual(await messageTexts(page), ["first", "second", "third"]);
      assert.deepEqual(await page.locator("#composer-error").textContent(), "");
      await bob.waitFor((m) => m.type === "message" && m.text === "third");
      const seen = bob.messages.filter((m) => m.type === "message").map((m) => m.text);
      assert.deepEqual(seen, ["first", "second", "third"]);
      assert.deepEqual(alice.problems, []);
    } finally {
      await bob.close();
    }
  },
  ["--port", "0", "--data", ":memory:", "--rate-limit", TIGHT_RATE],
);

browserTest("A taken name is said plainly and another can be picked", async (h) => {
  const bob = await TestClient.connect(h.server.wsUrl, "bob");
  try {
    const context = await h.browser.newContext();
    const page = await context.newPage();
    const chat = watch(page);
    await page.goto(h.server.url);
    await page.getByLabel("Name").fill("Bob");
    await page.getByRole("button", { name: "Join chat" }).click();
    await page.locator("#login-error", { hasText: "is taken" }).waitFor();
    await page.getByLabel("Name").fill("bobby");
    await page.getByRole("button", { name: "Join chat" }).click();
    await waitJoined(page, "general");
    // The name is remembered: a reload goes straight in.
    await page.reload();
    await waitJoined(page, "general");
    assert.deepEqual(await page.locator("#me-name").textContent(), "bobby");
    assert.deepEqual(chat.problems, []);
  } finally {
    await bob.close();
  }
});

browserTest(
  "A lookalike of a name in use is said to be taken; an invisible character is refused before sending",
  async (h) => {
    const bob = await TestClient.connect(h.server.wsUrl, "bob");
    try {
      const context = await h.browser.newContext();
      const page = await context.newPage();
      const chat = watch(page);
      let sockets = 0;
      page.on("websocket", () => sockets++);
      await page.goto(h.server.url);
      await page.getByLabel("Name").fill("b\u03bfb"); // Greek ο
      await page.getByRole("button", { name: "Join chat" }).click();
      await page.locator("#login-error", {
        hasText: "The name “bοb” is taken, or looks like one that is. If it is yours, enter its " +
          "password; otherwise pick another name.",
      }).waitFor();
      assert.equal(sockets, 1);
      await page.getByLabel("Name").fill("bobby\u3164");
      await page.getByRole("button", { name: "Join chat" }).click();
      await page.locator("#login-error", {
        hasText: "Names may not hold invisible characters (U+3164).",
      }).waitFor();
      assert.equal(sockets, 1, "the name was sent to the server");
      assert.equal(await page.getByLabel("Name").getAttribute("aria-invalid"), "true");
      assert.deepEqual(chat.problems, []);
    } finally {
      await bob.close();
    }
  },
);

browserTest(
  "Two tabs of one account are both live: each shows what the other sends, and the room sees one alice",
  async (h) => {
    const bob = await h.open("bob");
    const first = await h.open("alice");
    // A second tab in the same browser profile signs in with the stored session token.
    const second = watch(await first.page.context().newPage());
    await second.page.goto(h.server.url);
    await waitJoined(second.page, "general");
    await say(second.page, "from the second tab");
    await waitMessage(first.page, "from the second tab");
    await say(bob.page, "to both tabs");
    await waitMessage(first.page, "to both tabs");
    await waitMessage(second.page, "to both tabs");
    await first.page.waitForTimeout(1500);
    // Neither tab stopped the other, and bob's list has alice once.
    for (const tab of [first, second]) {
      assert.equal(await tab.page.getByRole("button", { name: "Reconnect here" }).count(), 0);
    }
    const names = await bob.page.locator("#members > li .name").allTextContents();
    assert.deepEqual(names.filter((n) => n === "alice"), ["alice"]);
    // A room joined in one tab and left in the other is gone from both.
    await first.page.getByLabel("Room", { exact: true }).fill("random");
    await first.page.getByRole("button", { name: "Join", exact: true }).click();
    await waitJoined(first.page, "random");
    await second.page.reload();
    await waitJoined(second.page, "general");
    await second.page.getByRole("button", { name: "Leave random" }).click();
    await first.page.locator("#rooms .entry", { hasText: "random" }).waitFor({ state: "detached" });
    for (const chat of [bob, first, second]) assert.deepEqual(chat.problems, []);
  },
);

browserTest("A name is refused to a second person after its owner left", async (h) => {
  const alice = await h.open("alice");
  await alice.page.context().close();
  const context = await h.browser.newContext();
  const page = await context.newPage();
  const chat = watch(page);
  await page.goto(h.server.url);
  await page.getByLabel("Name").fill("Alice");
  await page.getByRole("button", { name: "Join chat" }).click();
  await page.locator("#login-error", { hasText: "The name “Alice” is taken" }).waitFor();
  assert.deepEqual(chat.problems, []);
});

const SIDEBAR_HIDDEN = () =>
  getComputedStyle(document.getElementById("sidebar")).visibility === "hidden";

browserTest("The narrow layout hides the sidebar behind a button", async (h) => {
  const alice = await h.open("alice", { viewport: { width: 390, height: 800 } });
  const page = alice.page;
  const sidebar = page.locator("#sidebar");
  const menu = page.getByRole("button", { name: "Rooms and people" });
  assert.deepEqual(await sidebar.isVisible(), false);
  await menu.click();
  await page.waitForFunction(() =>
    document.getElementById("sidebar").getBoundingClientRect().left === 0
  );
  assert.deepEqual(await sidebar.isVisible(), true);
  assert.deepEqual(await menu.getAttribute("aria-expanded"), "true");
  await page.keyboard.press("Escape");
  await page.waitForFunction(SIDEBAR_HIDDEN);
  await menu.click();
  await page.locator("#rooms .entry", { hasText: "general" }).click();
  await page.waitForFunction(SIDEBAR_HIDDEN);
  // The composer still fits the screen.
  const send = await page.getByRole("button", { name: "Send" }).boundingBox();
  assert.ok((send?.x ?? 999) + (send?.width ?? 0) <= 390);
  assert.deepEqual(alice.problems, []);
});

browserTest("The page keeps to its CSP and talks to no other host", async (h) => {
  const alice = await h.open("alice");
  const bob = await h.open("bob");
  await say(alice.page, "a link https://example.com/ and an image name x.png");
  await waitMessage(bob.page, "a link https://example.com/ and an image name x.png");
  const response = await alice.page.goto(h.server.url);
  const csp = response?.headers()["content-security-policy"] ?? "";
  assert.deepEqual(csp.includes("default-src 'self'"), true, csp);
  await waitJoined(alice.page, "general");
  const origin = new URL(h.server.url);
  for (const chat of [alice, bob]) {
    for (const url of chat.requests) {
      assert.deepEqual(new URL(url).host, origin.host, `request to another host: ${url}`);
    }
    // A CSP violation shows as a console error, which `problems` collects.
    assert.deepEqual(chat.problems, []);
  }
});

browserTest("Server errors show inline in plain words", async (h) => {
  const alice = await h.open("alice");
  const page = alice.page;
  // The composer refuses a message over the limit from the welcome, with a counter.
  const box = page.getByLabel("Message", { exact: true });
  await box.fill("x".repeat(45));
  assert.deepEqual(await page.locator("#counter").textContent(), "45 / 50");
  await box.fill("x".repeat(51));
  await box.press("Enter");
  await page.locator("#composer-error", { hasText: "Too long" }).waitFor();
  // A DM to someone who left fails with the reason and can be discarded.
  const bob = await h.open("bob");
  await page.locator("#members button", { hasText: "bob" }).click();
  await bob.page.context().close();
  // The DM view has no system lines: bob's leave shows as his dot going grey in the DM list.
  const peer = page.locator("#dms .entry", { hasText: "bob" });
  await peer.locator(".dot:not(.on)").waitFor();
  // Said to screen readers too, not only by the dot's colour.
  assert.match(
    await peer.getAttribute("aria-label") ?? "",
    /^bob, offline/,
    "bob is shown offline",
  );
  await say(page, "are you there?");
  await page.locator("#pending li", { hasText: "Not sent: that person is not online." }).waitFor();
  await page.getByRole("button", { name: "Discard" }).click();
  assert.deepEqual(await page.locator("#pending li").count(), 0);
  assert.deepEqual(alice.problems, []);
}, ["--port", "0", "--data", ":memory:", "--max-text-chars", "50"]);

browserTest("A page that was away catches up on more than 1000 missed messages", async (h) => {
  // The page's WebSockets go through the test, which can cut them and refuse new ones a while.
  const context = await h.browser.newContext();
  let away = false;
  const sockets: { close(): Promise<void> }[] = [];
  await context.routeWebSocket(/\/ws$/, (ws) => {
    if (away) return void ws.close();
    ws.connectToServer();
    sockets.push(ws);
  });
  const page = await context.newPage();
  const first = watch(page);
  await page.goto(h.server.url);
  await page.getByLabel("Name").fill("alice");
  await page.getByRole("button", { name: "Join chat" }).click();
  await waitJoined(page, "general");
  away = true;
  for (const ws of sockets) await ws.close();
  const again = page.getByRole("button", { name: "Retry now" });
  await again.waitFor();
  const seeder = await TestClient.connect(h.server.wsUrl, "seeder");
  try {
    await seeder.request({ type: "join", room: "general" }, (m) => m.type === "joined");
    for (let i = 1; i <= 1100; i++) seeder.send({ type: "say", room: "general", text: `m${i}` });
    await seeder.waitFor((m) => m.type === "message" && m.text === "m1100", 20_000);
  } finally {
    await seeder.close();
  }
  // The rejoin asks for everything since the last seq seen: 1000 arrive with `more`, the rest
  // by paging forward with `after`.
  away = false;
  await again.click();
  await waitMessage(first.page, "m1100");
  const texts = await messageTexts(first.page);
  assert.deepEqual(texts, Array.from({ length: 1100 }, (_, i) => `m${i + 1}`));
  // Missed messages count as unread while the tab is hidden; here it is visible, so none.
  assert.deepEqual(await first.page.title(), "Chat");
  assert.deepEqual(first.problems, []);
}, ["--port", "0", "--data", ":memory:", "--rate-limit", "off"]);

/**
 * Runs in the page: lists every visible text (and placeholder) whose contrast with its background
 * is under WCAG AA (4.5:1, or 3:1 for large text). Decorative text (aria-hidden) is skipped.
 */
const CONTRAST_CHECK = `(() => {
  const rgba = (c) => { const m = c.match(/[\\d.]+/g).map(Number); return { r: m[0], g: m[1], b: m[2], a: m[3] ?? 1 }; };
  const lum = ({ r, g, b }) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    const layers = [];
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c.a > 0) layers.push(c);
      if (c.a >= 1) break;
    }
    let base = layers.pop() ?? rgba(getComputedStyle(document.body).backgroundColor);
    for (const t of layers.reverse()) base = { r: t.r * t.a + base.r * (1 - t.a), g: t.g * t.a + base.g * (1 - t.a), b: t.b * t.a + base.b * (1 - t.a) };
    return base;
  };
  const ratio = (fg, el) => { const a = lum(fg), b = lum(background(el)); return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement, style = getComputedStyle(el);
    if (!walker.currentNode.textContent.trim() || !el.getBoundingClientRect().width) continue;
    if (style.visibility === "hidden" || el.closest("[aria-hidden=true]")) continue;
    const size = parseFloat(style.fontSize), large = size >= 24 || (size >= 18.66 && +style.fontWeight >= 700);
    const r = ratio(rgba(style.color), el);
    if (r < (large ? 3 : 4.5)) bad.push(el.tagName + "." + el.className + " " + JSON.stringify(el.textContent.slice(0, 20)) + " " + r.toFixed(2));
  }
  for (const el of document.querySelectorAll("input, textarea")) {
    if (!el.getBoundingClientRect().width) continue;
    const r = ratio(rgba(getComputedStyle(el, "::placeholder").color), el);
    if (r < 4.5) bad.push("placeholder of #" + el.id + " " + r.toFixed(2));
  }
  return bad;
})()`;

browserTest("Text meets WCAG AA contrast in light and dark themes", async (h) => {
  const bob = await TestClient.connect(h.server.wsUrl, "bob");
  try {
    await bob.request({ type: "join", room: "side" }, (m) => m.type === "joined");
    for (const colorScheme of ["light", "dark"] as const) {
      // The check is a string, which the page's CSP (no eval) would refuse; only this test lifts it.
      const context = await h.browser.newContext({ colorScheme, bypassCSP: true });
      const page = await context.newPage();
      await page.goto(h.server.url);
      assert.deepEqual(await page.evaluate(CONTRAST_CHECK), [], `${colorScheme} sign-in`);
      const name = `alice_${colorScheme}`;
      await page.getByLabel("Name").fill(name);
      await page.getByRole("button", { name: "Join chat" }).click();
      await waitJoined(page, "general");
      await page.getByLabel("Room", { exact: true }).fill("side");
      await page.getByLabel("Room", { exact: true }).press("Enter");
      await waitJoined(page, "side");
      await page.locator("#rooms .entry", { hasText: "general" }).click();
      await bob.request(
        { type: "say", room: "side", text: `hi @${name} https://example.com` },
        (m) => m.type === "message",
      );
      await bob.request({ type: "dm", to: name, text: "psst" }, (m) => m.type === "dm");
      await say(page, "my own message with a link https://example.com/x");
      await page.getByLabel("Message", { exact: true }).fill("x".repeat(3500));
      await page.locator("#dms .count", { hasText: "1" }).waitFor();
      assert.deepEqual(await page.evaluate(CONTRAST_CHECK), [], `${colorScheme} chat`);
      await page.locator("#rooms .entry", { hasText: "side" }).click();
      await page.locator("#messages .mentioned").waitFor();
      assert.deepEqual(await page.evaluate(CONTRAST_CHECK), [], `${colorScheme} mention`);
      await context.close();
    }
  } finally {
    await bob.close();
  }
});

browserTest("Desktop notifications for DMs and mentions, only once turned on", async (h) => {
  const context = await h.browser.newContext();
  await context.grantPermissions(["notifications"], { origin: h.server.url });
  // Record notifications instead of showing them (an init script is not subject to the CSP).
  await context.addInitScript(`{
    const Real = Notification;
    window.shown = [];
    window.Notification = class extends Real {
      constructor(title, options) { super(title, options); window.shown.push(title); }
    };
  }`);
  const page = await context.newPage();
  const chat = watch(page);
  await page.goto(h.server.url);
  await page.getByLabel("Name").fill("alice");
  await page.getByRole("button", { name: "Join chat" }).click();
  await waitJoined(page, "general");
  const shown = () => page.evaluate(() => (globalThis as unknown as { shown: string[] }).shown);
  const bob = await TestClient.connect(h.server.wsUrl, "bob");
  try {
    await bob.request({ type: "join", room: "general" }, (m) => m.type === "joined");
    await page.evaluate(() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    // Not turned on yet: nothing.
    await bob.request({ type: "dm", to: "alice", text: "first" }, (m) => m.type === "dm");
    await page.locator("#dms .count", { hasText: "1" }).waitFor();
    assert.deepEqual(await shown(), []);

    await page.getByRole("button", { name: "Enable notifications" }).click();
    await page.getByRole("button", { name: "Notifications on" }).waitFor();
    await bob.request({ type: "dm", to: "alice", text: "second" }, (m) => m.type === "dm");
    await bob.request({ type: "say", room: "general", text: "plain" }, (m) => m.type === "message");
    await bob.request(
      { type: "say", room: "general", text: "hey @alice" },
      (m) => m.type === "message",
    );
    await page.waitForFunction(() => document.title === "(4) Chat");
    assert.deepEqual(await shown(), ["Message from bob", "bob in #general"]);
    assert.deepEqual(chat.problems, []);
  } finally {
    await bob.close();
  }
});

Deno.test({
  name:
    "A reconnect whose name is still held on another instance keeps retrying and comes back by itself",
  ignore: !HAVE_CHROMIUM || !HAVE_REDIS,
  async fn() {
    const redis = await startRedis();
    assert.ok(redis !== null, "redis-server was found but did not start");
    const servers: SpawnedServer[] = [];
    const start = async (port = 0) => {
      const s = await spawnServer(["--port", String(port), "--redis", redis.url]);
      servers.push(s);
      return s;
    };
    let browser: Browser | undefined;
    let holder: TestClient | undefined;
    try {
      const a = await start();
      const b = await start();
      browser = await chromium.launch(LAUNCH);
      const alice = await openChat(browser, a.url, "alice");
      // Instance A goes away; meanwhile "alice" is taken on B (think: the old connection, still
      // open there). A comes back on the same address and the page's reconnects land on it.
      await a.stop();
      const token = await alice.page.evaluate(() =>
        JSON.parse(localStorage.getItem("chat.identity") ?? "{}").token
      );
      holder = await TestClient.connect(b.wsUrl, "alice", { resume: token });
      const again = await start(a.port);
      await eventually("a reconnect refused with 4009 on the new A", async () => {
        const text = await (await fetch(new URL("metrics", again.url))).text();
        return /chat_disconnects_total\{reason="name_taken"\} [1-9]/.test(text);
      }, 20_000);
      assert.equal(await alice.page.locator("#login").isHidden(), true, "no sign-in form");
      await holder.close();
      // Back online in #general, as alice, with no click: the retries went on after the 4009.
      await waitJoined(alice.page, "general");
      assert.equal(await alice.page.locator("#me-name").textContent(), "alice");
      assert.equal(await alice.page.locator("#login").isHidden(), true);
      assert.deepEqual(alice.problems, []);
    } finally {
      await holder?.close();
      await browser?.close();
      for (const s of servers) await s.stop();
      await redis.stop();
    }
  },
});
