/** The message box in a real browser: its counter against the server's count, and typing notices. */
import assert from "node:assert/strict";
import { browserTest, say, waitMessage } from "./browser_harness.ts";

declare const document: { getElementById(id: string): { textContent: string | null } };

browserTest(
  "The counter counts a message as it is sent: trailing spaces do not count, as in the error",
  async (h) => {
    const alice = await h.open("alice");
    const page = alice.page;
    const box = page.getByLabel("Message", { exact: true });
    const counter = page.locator("#counter");
    // At the limit with trailing spaces: the counter says it fits, and it is sent.
    await box.fill("x".repeat(50) + "   ");
    assert.deepEqual(await counter.textContent(), "50 / 50");
    assert.deepEqual(await counter.evaluate((e) => e.classList.contains("over")), false);
    await box.press("Enter");
    await waitMessage(page, "x".repeat(50));
    // Over it: the counter and the error give the same number.
    await box.fill("y".repeat(51) + " ");
    assert.deepEqual(await counter.textContent(), "51 / 50");
    assert.deepEqual(await counter.evaluate((e) => e.classList.contains("over")), true);
    await box.press("Enter");
    await page.locator("#composer-error", { hasText: "Too long: 51 of 50 characters." }).waitFor();
    assert.deepEqual(alice.problems, []);
  },
  ["--port", "0", "--data", ":memory:", "--max-text-chars", "50"],
);

/** The most a typing notice may lag behind the key that started it, in ms: the 2 s interval and slack. */
const TYPING_SHOWN_WITHIN_MS = 3000;

browserTest(
  "Typing again right after a send shows the typing indicator again",
  async (h) => {
    const alice = await h.open("alice");
    const bob = await h.open("bob");
    const typing = alice.page.locator("#typing", { hasText: "bob is typing…" });
    const box = bob.page.getByLabel("Message", { exact: true });
    await box.pressSequentially("first");
    await typing.waitFor();
    await box.press("Enter");
    await waitMessage(alice.page, "first");
    // The message clears bob's indicator at once.
    assert.deepEqual(await alice.page.locator("#typing").textContent(), "");
    // Within 2 s of his last notice, which the server would not relay again yet.
    await box.pressSequentially("and");
    const started = Date.now();
    await typing.waitFor({ timeout: TYPING_SHOWN_WITHIN_MS });
    assert.ok(Date.now() - started < TYPING_SHOWN_WITHIN_MS);
    await say(bob.page, "and more");
    await waitMessage(alice.page, "and more");
    await alice.page.waitForFunction(() => document.getElementById("typing").textContent === "");
    assert.deepEqual([...alice.problems, ...bob.problems], []);
  },
);
