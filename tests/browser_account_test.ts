/**
 * An account's own password and sessions in real Chromium against the real server: two browser
 * contexts of one account (a laptop and a phone) both live, a wrong password refused and then
 * limited, a session signed out from the sessions list and this one from its own button, and
 * unread counts kept by the server: across a reload, on the other device, cleared by reading there.
 */
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { browserTest, say, waitJoined, waitMessage, watch } from "./browser_harness.ts";
import { MAX_FAILURES_PER_ACCOUNT } from "../auth/sign_in_limit.ts";
import { TestClient } from "./helpers.ts";

const PASSWORD = "correct horse battery";
/** A scrypt hash at OWASP's parameters takes about half a second here; a sign-in waits for one. */
const SIGN_IN_WAIT_MS = 15_000;

declare const document: {
  getElementById(id: string): { textContent: string | null };
  activeElement: { id: string } | null;
  querySelector(selector: string): { textContent: string | null } | null;
};
declare const localStorage: { getItem(key: string): string | null };

/** A fresh browser context (another device) on the sign-in card, with `name` typed. */
async function device(browser: Browser, url: string, name: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  watch(page);
  await page.goto(url);
  await page.getByLabel("Name").fill(name);
  return page;
}

/**
 * Submits the sign-in card and waits for the outcome: the room joined, or the socket closed and
 * the card showing why (a submit clears the error line; a refusal fills it).
 */
async function submit(page: Page): Promise<void> {
  const socket = page.waitForEvent("websocket");
  await page.getByRole("button", { name: "Join chat" }).click();
  const ws = await socket;
  const refused = async () => {
    if (!ws.isClosed()) await ws.waitForEvent("close", { timeout: SIGN_IN_WAIT_MS });
    await page.waitForFunction(() => document.getElementById("login-error").textContent !== "");
  };
  await Promise.race([refused(), waitJoined(page, "general")]);
}

/** The sign-in card's error line. */
const loginError = (page: Page) =>
  page.evaluate(() => document.getElementById("login-error").textContent ?? "");

/** Opens the account dialog, sets a password on the account, and closes the dialog. */
async function setPassword(page: Page, password: string): Promise<void> {
  await page.getByRole("button", { name: "Account" }).click();
  await page.getByLabel("New password").fill(password);
  await page.getByRole("button", { name: "Save password" }).click();
  await page.getByText("Password saved.").waitFor({ timeout: SIGN_IN_WAIT_MS });
  await page.getByRole("button", { name: "Close" }).click();
}

browserTest(
  "two browser contexts of one account, a laptop and a phone, are both live: the phone signs in with the password set on the laptop",
  async (h) => {
    const laptop = await h.open("Ada");
    await setPassword(laptop.page, PASSWORD);
    const phone = await device(h.browser, h.server.url, "ada");
    await submit(phone);
    assert.match(await loginError(phone), /is taken.*If it is yours, enter its password/);
    assert.equal(
      await phone.evaluate(() => document.activeElement?.id),
      "login-account-password",
      "the card asks for the name's password",
    );
    await phone.getByLabel("Your password").fill(PASSWORD);
    await submit(phone);
    await waitJoined(phone, "general");
    await say(phone, "from the phone");
    await waitMessage(laptop.page, "from the phone");
    await say(laptop.page, "from the laptop");
    await waitMessage(phone, "from the laptop");
    assert.deepEqual(laptop.problems, []);
  },
);

browserTest(
  "a wrong password is refused on the card, and after ten the name's password sign-ins must wait",
  async (h) => {
    const owner = await h.open("Bea");
    await setPassword(owner.page, PASSWORD);
    const page = await device(h.browser, h.server.url, "Bea");
    for (let i = 0; i < MAX_FAILURES_PER_ACCOUNT; i++) {
      await page.getByLabel("Your password").fill(`wrong guess ${i}`);
      await submit(page);
      assert.equal(await loginError(page), "That password is not right for this name.");
      assert.equal(
        await page.getByLabel("Your password").inputValue(),
        "",
        "a refused one is cleared",
      );
    }
    await page.getByLabel("Your password").fill(PASSWORD);
    await submit(page);
    assert.equal(
      await loginError(page),
      "Too many wrong passwords for this name. Try again in a few minutes.",
    );
    // The owner is not locked out: its session still holds.
    await say(owner.page, "still here");
    await waitMessage(owner.page, "still here");
  },
);

browserTest(
  "a session signed out from the sessions list closes on the other device, and Sign out ends this one",
  async (h) => {
    const laptop = await h.open("Cy");
    await setPassword(laptop.page, PASSWORD);
    const phone = await device(h.browser, h.server.url, "Cy");
    await phone.getByLabel("Your password").fill(PASSWORD);
    await submit(phone);
    await waitJoined(phone, "general");
    // The laptop's dialog lists both, this one marked; the other can be signed out.
    await laptop.page.getByRole("button", { name: "Account" }).click();
    const rows = laptop.page.locator("#sessions li");
    await rows.nth(1).waitFor();
    const texts = await rows.allTextContents();
    assert.equal(texts.filter((t) => t.includes("this device")).length, 1, texts.join(" | "));
    await laptop.page.locator("#sessions button").click();
    await phone.getByText("You were signed out.").waitFor({ timeout: SIGN_IN_WAIT_MS });
    assert.equal(await phone.getByLabel("Name").inputValue(), "Cy");
    assert.equal(await phone.locator("#messages .msg").count(), 0, "nothing of the chat stays");
    await rows.nth(1).waitFor({ state: "detached" });
    // Signing this one out shows the card, and a reload does not sign back in.
    await laptop.page.getByRole("button", { name: "Sign out", exact: true }).click();
    await laptop.page.getByText("You signed out.").waitFor({ timeout: SIGN_IN_WAIT_MS });
    await laptop.page.reload();
    await laptop.page.getByRole("button", { name: "Join chat" }).waitFor();
    assert.equal(await laptop.page.locator("#app").isHidden(), true);
  },
);

/** The unread badge of `room` in the sidebar ("" when none). */
const badge = (page: Page, room: string) =>
  page.locator(`#rooms li:has(button[data-room="${room}"]) .count`).textContent();

/** Waits until the sidebar's unread badge of `room` reads `text`. */
async function waitBadge(page: Page, room: string, text: string): Promise<void> {
  const selector = `#rooms li:has(button[data-room="${room}"]) .count`;
  await page.waitForFunction(
    ([s, t]) => document.querySelector(s)?.textContent === t,
    [selector, text] as const,
  );
}

browserTest(
  "unread counts survive a reload and show on the account's other device; reading on one clears the other",
  async (h) => {
    const laptop = await h.open("Di");
    await setPassword(laptop.page, PASSWORD);
    await laptop.page.getByLabel("Room", { exact: true }).fill("random");
    await laptop.page.getByLabel("Room", { exact: true }).press("Enter");
    await waitJoined(laptop.page, "random");
    const bob = await h.open("Bob");
    await bob.page.getByLabel("Room", { exact: true }).fill("random");
    await bob.page.getByLabel("Room", { exact: true }).press("Enter");
    await waitJoined(bob.page, "random");
    // Another connection of Di's account hears the marker the laptop sends once it shows "one".
    const identity = await laptop.page.evaluate(() => localStorage.getItem("chat.identity"));
    const watcher = await TestClient.connect(h.server.wsUrl, "Di", {
      resume: JSON.parse(identity!).token,
    });
    try {
      await say(bob.page, "one");
      await waitMessage(laptop.page, "one");
      await watcher.waitFor((m) => m.type === "read" && m.room === "random" && m.seq === 1);
      await laptop.page.locator("#rooms .entry", { hasText: "general" }).click();
      await waitJoined(laptop.page, "general");
      await say(bob.page, "two");
      await say(bob.page, "three");
      await waitBadge(laptop.page, "random", "2");
      await laptop.page.reload();
      await waitJoined(laptop.page, "general");
      await waitBadge(laptop.page, "random", "2");
      // The phone, a browser of its own, gets the account's rooms and how far they were read.
      const phone = await device(h.browser, h.server.url, "Di");
      await phone.getByLabel("Your password").fill(PASSWORD);
      await submit(phone);
      await waitBadge(phone, "random", "2");
      await phone.locator("#rooms .entry", { hasText: "random" }).click();
      await waitJoined(phone, "random");
      const rows = await phone.locator("#messages > li").allTextContents();
      const divider = rows.indexOf("New since you left");
      assert.ok(divider > 0, `a divider among ${JSON.stringify(rows)}`);
      assert.match(rows[divider - 1], /one/);
      assert.match(rows[divider + 1], /two/);
      // Read on the phone: the laptop's badge goes.
      await waitBadge(laptop.page, "random", "");
      assert.equal(await badge(phone, "random"), "");
    } finally {
      await watcher.close();
    }
  },
);
