/** The sidebar in a real browser: what it lists in a conversation, and the notifications switch. */
import assert from "node:assert/strict";
import { browserTest, waitJoined } from "./browser_harness.ts";

declare const Notification: { permission: string };

browserTest(
  "A conversation's sidebar shows no Members heading; a room's shows its members",
  async (h) => {
    const alice = await h.open("alice");
    await h.open("bob");
    const page = alice.page;
    const title = page.locator("#members-title");
    await page.locator("#members button", { hasText: "bob" }).waitFor();
    assert.deepEqual(await title.textContent(), "Members · 2");
    assert.deepEqual(await title.isVisible(), true);

    await page.locator("#members button", { hasText: "bob" }).click();
    await page.locator("#view-title", { hasText: "bob" }).waitFor();
    await title.waitFor({ state: "hidden", timeout: 5000 });
    assert.deepEqual(await page.locator("#members").isVisible(), false);
    assert.deepEqual(await page.getByRole("heading", { name: "Members" }).count(), 0);

    await page.locator("#rooms .entry", { hasText: "general" }).click();
    await waitJoined(page, "general");
    await title.waitFor({ state: "visible" });
    assert.deepEqual(await page.locator("#members .entry").count(), 2);
    assert.deepEqual(alice.problems, []);
  },
);

browserTest("Enable notifications says so when the browser blocks them", async (h) => {
  // No permission granted: headless Chromium refuses a request outright, as a user's "Block" does.
  const alice = await h.open("alice");
  const page = alice.page;
  const button = page.getByRole("button", { name: "Enable notifications" });
  await button.click();
  const note = page.locator("#notify-note");
  await note.filter({ hasText: "Notifications are blocked for this site" }).waitFor({
    timeout: 5000,
  });
  assert.deepEqual(await note.getAttribute("aria-live"), "polite", "screen readers hear it too");
  assert.deepEqual(await page.evaluate(() => Notification.permission), "denied");
  assert.deepEqual(await button.getAttribute("aria-pressed"), "false");
  assert.deepEqual(await button.textContent(), "Enable notifications");
  assert.deepEqual(alice.problems, []);
});
