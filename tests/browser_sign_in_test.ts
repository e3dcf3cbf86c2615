/**
 * Signing in as a user meets it in a real browser: the first screen shows the fields the server's
 * mode asks for (from /config.json), a password or token is typed once per browser session, an
 * expired token says so, and a reload resumes with the newest resume token.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { signJwt } from "../auth/jwt.ts";
import { browserTest, waitJoined, watch } from "./browser_harness.ts";

declare const localStorage: { getItem(key: string): string | null };

/** How long a sign-in screen may take to show its fields, in ms. */
const SCREEN_WAIT_MS = 5000;

/** The resume token the page keeps. */
const storedResume = (page: Page) =>
  page.evaluate(() => JSON.parse(localStorage.getItem("chat.identity") ?? "{}").token as string);

browserTest(
  "A password server asks for the password on the first screen, once per browser session",
  async (h) => {
    const context = await h.browser.newContext();
    const page = await context.newPage();
    const chat = watch(page);
    await page.goto(h.server.url);
    const password = page.getByLabel("Chat password", { exact: true });
    await password.waitFor({ timeout: SCREEN_WAIT_MS });
    assert.deepEqual(await page.locator("#login-error").textContent(), "", "no failure first");
    assert.deepEqual(await page.getByLabel("Name").isVisible(), true);
    assert.deepEqual(await page.getByLabel("Sign-in token").isVisible(), false);

    await page.getByLabel("Name").fill("alice");
    await page.getByRole("button", { name: "Join chat" }).click();
    await page.locator("#login-error", { hasText: "Enter the chat's password." }).waitFor();
    await password.fill("wrong");
    await page.getByRole("button", { name: "Join chat" }).click();
    await page.locator("#login-error", { hasText: "That password is not right." }).waitFor();
    await password.fill("s3cret");
    await page.getByRole("button", { name: "Join chat" }).click();
    await waitJoined(page, "general");

    // A reload, and a new tab while this one is open, go straight in.
    await page.reload();
    await waitJoined(page, "general");
    const tab = await context.newPage();
    const tabChat = watch(tab);
    await tab.goto(h.server.url);
    await waitJoined(tab, "general");
    assert.deepEqual(await tab.locator("#login").isHidden(), true);

    // Another browser session asks again, with the field there at once.
    const other = await (await h.browser.newContext()).newPage();
    await other.goto(h.server.url);
    await other.getByLabel("Chat password", { exact: true }).waitFor({ timeout: SCREEN_WAIT_MS });
    assert.deepEqual(await other.getByLabel("Chat password", { exact: true }).inputValue(), "");
    assert.deepEqual([...chat.problems, ...tabChat.problems], []);
  },
  ["--port", "0", "--data", ":memory:", "--password", "s3cret"],
);

browserTest(
  "A token server asks for a sign-in token, and no name or password",
  async (h) => {
    const token = await signJwt({ sub: "carol", exp: Math.floor(Date.now() / 1000) + 600 }, "k3y");
    const page = await (await h.browser.newContext()).newPage();
    const chat = watch(page);
    await page.goto(h.server.url);
    const field = page.getByLabel("Sign-in token");
    await field.waitFor({ timeout: SCREEN_WAIT_MS });
    assert.deepEqual(await page.getByLabel("Name").isVisible(), false);
    assert.deepEqual(await page.getByLabel("Chat password", { exact: true }).isVisible(), false);
    assert.match(await page.locator("#login-intro").textContent() ?? "", /sign-in token/);
    await page.getByRole("button", { name: "Join chat" }).click();
    await page.locator("#login-error", { hasText: "Paste your sign-in token." }).waitFor();
    await field.fill("not-a-token");
    await page.getByRole("button", { name: "Join chat" }).click();
    await page.locator("#login-error", { hasText: "That sign-in token was not accepted." })
      .waitFor();
    await field.fill(token);
    await page.getByRole("button", { name: "Join chat" }).click();
    await waitJoined(page, "general");
    // The token names the user.
    assert.deepEqual(await page.locator("#me-name").textContent(), "carol");
    await page.reload();
    await waitJoined(page, "general");
    assert.deepEqual(chat.problems, []);
  },
  ["--port", "0", "--data", ":memory:", "--jwt-secret", "k3y"],
);

browserTest(
  "A server that wants a token and a password asks for both on the first screen",
  async (h) => {
    const token = await signJwt({ sub: "dave", exp: Math.floor(Date.now() / 1000) + 600 }, "k3y");
    const page = await (await h.browser.newContext()).newPage();
    await page.goto(h.server.url);
    await page.getByLabel("Sign-in token").waitFor({ timeout: SCREEN_WAIT_MS });
    assert.deepEqual(await page.getByLabel("Chat password", { exact: true }).isVisible(), true);
    assert.deepEqual(await page.getByLabel("Name").isVisible(), false);
    await page.getByLabel("Sign-in token").fill(token);
    await page.getByLabel("Chat password", { exact: true }).fill("s3cret");
    await page.getByRole("button", { name: "Join chat" }).click();
    await waitJoined(page, "general");
    assert.deepEqual(await page.locator("#me-name").textContent(), "dave");
  },
  ["--port", "0", "--data", ":memory:", "--jwt-secret", "k3y", "--password", "s3cret"],
);

/** A token's lifetime in the next test, in s: long enough to sign in, short enough to wait out. */
const SHORT_TOKEN_SECONDS = 4;

browserTest(
  "An expired sign-in token is said to have expired, at sign-in and when it runs out while connected",
  async (h) => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await signJwt({ sub: "erin", exp: now - 60 }, "k3y");
    const page = await (await h.browser.newContext()).newPage();
    const chat = watch(page);
    await page.goto(h.server.url);
    const field = page.getByLabel("Sign-in token");
    await field.waitFor({ timeout: SCREEN_WAIT_MS });
    await field.fill(expired);
    await page.getByRole("button", { name: "Join chat" }).click();
    const words = "Your sign-in token has expired. Paste a new one.";
    await page.locator("#login-error", { hasText: words }).waitFor({ timeout: SCREEN_WAIT_MS });
    assert.deepEqual(await field.inputValue(), "", "the expired token is cleared");

    const exp = Math.floor(Date.now() / 1000) + SHORT_TOKEN_SECONDS;
    const short = await signJwt({ sub: "erin", exp }, "k3y");
    await field.fill(short);
    await page.getByRole("button", { name: "Join chat" }).click();
    await waitJoined(page, "general");
    await page.locator("#login-error", { hasText: words }).waitFor({
      timeout: (SHORT_TOKEN_SECONDS + 3) * 1000,
    });
    assert.deepEqual(await field.isVisible(), true);
    assert.deepEqual(chat.problems, []);
  },
  ["--port", "0", "--data", ":memory:", "--jwt-secret", "k3y"],
);

browserTest(
  "A reload resumes the name and keeps the new resume token from the welcome",
  async (h) => {
    const alice = await h.open("alice");
    const first = await storedResume(alice.page);
    assert.match(first, /^[A-Za-z0-9_-]{43}$/);
    await alice.page.reload();
    await waitJoined(alice.page, "general");
    const second = await storedResume(alice.page);
    assert.notEqual(second, first, "the takeover rotated the token and the page kept the new one");
    // The kept token is the live one: another reload resumes with it instead of being refused.
    await alice.page.reload();
    await waitJoined(alice.page, "general");
    assert.deepEqual(await alice.page.locator("#me-name").textContent(), "alice");
    assert.deepEqual(alice.problems, []);
  },
);
