/**
 * The member list of a large room in real Chromium against the real server (issue 16): 2000
 * members join from their own process (tests/members_crowd.ts); the page shows the count, draws
 * only the rows in view, pages through the whole list with `members` as it is scrolled, and keeps
 * it right through batched presence frames, also one with `more` (more left than a frame names).
 * What is right is what the server's own `members` pages say, read by a second client.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { browserTest } from "./browser_harness.ts";
import { type Msg, TestClient, within } from "./helpers.ts";
import { join } from "./server_fixture.ts";

/** Members in the crowd. */
const CROWD = 2000;
/** How long the crowd may take to join, and the page to catch up after a change, in ms. */
const CROWD_JOIN_MS = 90_000;
const CATCH_UP_MS = 15_000;
/** A row's height in the list, px (MEMBER_ROW_PX in static/sidebar.js). */
const ROW_PX = 36;
/** Rows in the DOM at most: the box shows up to 12, plus 5 of overscan each side, with slack. */
const MAX_ROWS_IN_DOM = 30;
/** Flags that let one loopback address open the whole crowd. */
const OPEN_DOOR = [
  "--port",
  "0",
  "--data",
  ":memory:",
  "--rate-limit",
  "off",
  "--handshake-rate",
  "off",
  "--max-connections-per-ip",
  "0",
  "--max-pending-per-ip",
  "0",
  "--max-pending-connections",
  "4000",
  "--log-level",
  "warn",
];

/** What the functions run inside the page touch; Deno checks this file without the DOM library. */
declare const document: {
  getElementById(id: string): { scrollTop: number; clientHeight: number };
};
declare function requestAnimationFrame(f: () => void): void;

/** The crowd process; `next()` is its next JSON line. */
function crowd(port: number, n: number, prefix: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      new URL("members_crowd.ts", import.meta.url).pathname,
      String(port),
      "general",
      String(n),
      prefix,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const writer = child.stdin.getWriter();
  return {
    async next(what: string, ms: number): Promise<Msg> {
      while (!text.includes("\n")) {
        const { value, done } = await within(`the crowd: ${what}`, lines.read(), ms);
        if (done) throw new Error(`Cannot read the crowd: it ended before ${what}`);
        text += value;
      }
      const nl = text.indexOf("\n"), line = text.slice(0, nl);
      text = text.slice(nl + 1);
      return JSON.parse(line);
    },
    send: (command: string) => writer.write(new TextEncoder().encode(command + "\n")),
    async stop() {
      await writer.write(new TextEncoder().encode("exit\n")).catch(() => {});
      await writer.close().catch(() => {});
      await lines.cancel().catch(() => {});
      await child.status;
    },
  };
}

/** Every member of general in the server's order, read page by page with `members`. */
async function serverList(reader: TestClient): Promise<string[]> {
  const names: string[] = [];
  let after: string | undefined;
  do {
    const page = await reader.request(
      { type: "members", room: "general", limit: 500, ...after ? { after } : {} },
      (m) => m.type === "members" || m.type === "error",
    );
    assert.equal(page.type, "members", JSON.stringify(page));
    names.push(...page.members);
    after = page.next;
  } while (after !== undefined);
  return names;
}

/** The names of the member rows in the DOM, top to bottom (placeholders as "…"). */
const rowNames = (page: Page) =>
  page.locator("#members > li").evaluateAll((lis) =>
    lis.map((li) =>
      (li as unknown as { querySelector(s: string): { textContent: string } | null })
        .querySelector(".name")?.textContent ?? "…"
    )
  );

/** Scrolls the member list to `top` px and waits two frames for it to draw. */
async function scrollTo(page: Page, top: number) {
  await page.evaluate(async (y) => {
    document.getElementById("members-scroll").scrollTop = y;
    for (let i = 0; i < 2; i++) await new Promise<void>((r) => requestAnimationFrame(r));
  }, top);
}

/**
 * Waits until the rows in the DOM, the reader's own aside, are a stretch of `truth` (the server's
 * list without the reader), with no placeholder, and include `name` when given.
 */
async function waitShows(page: Page, truth: string[], name?: string) {
  const deadline = Date.now() + CATCH_UP_MS;
  let shown: string[] = [];
  while (Date.now() < deadline) {
    shown = (await rowNames(page)).filter((n) => n !== "alice");
    const at = truth.indexOf(shown[0]);
    if (
      at >= 0 && (name === undefined || shown.includes(name)) &&
      shown.every((n, i) => n === truth[at + i])
    ) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`the rows are not the server's${name ? ` with ${name}` : ""}: ${shown.join(" ")}`);
}

/** Scrolls from the top to the end a view's height at a time, checking the DOM stays small. */
async function scrollThrough(page: Page, rows: number) {
  const view = await page.evaluate(() => document.getElementById("members-scroll").clientHeight);
  for (let y = 0; y < rows * ROW_PX; y += view) {
    await scrollTo(page, y);
    const n = await page.locator("#members > li").count();
    assert.ok(n <= MAX_ROWS_IN_DOM, `${n} rows in the DOM at ${y} px`);
  }
  await scrollTo(page, 1e9);
}

browserTest(
  "A page in a room of 2000 real members pages its list as it scrolls and follows batched presence",
  async (h) => {
    const members = crowd(h.server.port, CROWD, "m");
    const reader = await TestClient.connect(h.server.wsUrl, "reader");
    try {
      const ready = await members.next("all joined", CROWD_JOIN_MS);
      assert.equal(ready.joined, CROWD, JSON.stringify(ready));
      await join(reader, "general");
      const alice = await h.open("alice");
      const page = alice.page, title = page.locator("#members-title");
      await title.filter({ hasText: "Members · 2,002" }).waitFor();
      let truth = (await serverList(reader)).filter((n) => n !== "alice");
      assert.equal(truth.length, CROWD + 1);
      await waitShows(page, truth, truth[0]);
      assert.ok((await rowNames(page)).length <= MAX_ROWS_IN_DOM);

      // To the end, a view at a time: the pages come from the server as the rows are reached.
      await scrollThrough(page, CROWD + 2);
      await waitShows(page, truth, truth.at(-1));
      assert.equal(
        await page.locator("#members > li").last().getAttribute("aria-posinset"),
        String(CROWD + 2),
      );

      // One leaves first, so a frame has just gone out when the 150 go: a room quiet for an
      // interval gets its next frame at once, which would split their burst in two.
      let heard = reader.messages.length;
      await members.send("leave 1");
      assert.equal((await members.next("1 left", CATCH_UP_MS)).open, CROWD - 1);
      await reader.waitFor((m) => m.type === "presence", CATCH_UP_MS, heard);
      // 150 leave at once: more than a frame names (100), so it says `more`; the count is exact
      // and the rows on screen are fetched again.
      heard = reader.messages.length;
      await members.send("leave 150");
      assert.equal((await members.next("150 left", CATCH_UP_MS)).open, CROWD - 151);
      await title.filter({ hasText: `Members · ${(CROWD + 2 - 151).toLocaleString("en-US")}` })
        .waitFor({ timeout: CATCH_UP_MS });
      const frames = reader.messages.slice(heard).filter((m) => m.type === "presence");
      assert.ok(
        frames.some((f) => f.more === true),
        `no frame said more: ${frames.map((f) => `${f.left.length} left`)}`,
      );
      truth = (await serverList(reader)).filter((n) => n !== "alice");
      assert.equal(truth.length, CROWD + 1 - 151);
      await scrollTo(page, 1e9);
      await waitShows(page, truth, truth.at(-1));
      // Scrolled through once more, every row is the server's and where the server has it.
      await scrollThrough(page, CROWD + 2);
      await waitShows(page, truth, truth.at(-1));
      assert.equal(
        await page.locator("#members > li").last().getAttribute("aria-posinset"),
        String(truth.length + 1),
      );

      // 20 more leave: one frame names them all.
      await members.send("leave 20");
      assert.equal((await members.next("20 left", CATCH_UP_MS)).open, CROWD - 171);
      await title.filter({ hasText: `Members · ${(CROWD + 2 - 171).toLocaleString("en-US")}` })
        .waitFor({ timeout: CATCH_UP_MS });
      truth = (await serverList(reader)).filter((n) => n !== "alice");
      await scrollTo(page, 0);
      await waitShows(page, truth, truth[0]);
      await scrollThrough(page, CROWD + 2);
      await waitShows(page, truth, truth.at(-1));
      assert.deepEqual(alice.problems, []);
    } finally {
      await reader.close();
      await members.stop();
    }
  },
  OPEN_DOOR,
);
