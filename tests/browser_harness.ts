/**
 * What every real-browser test file shares: Debian's Chromium driven by playwright-core against
 * the real server (`main.ts` as a child process), opening signed-in pages, and the waits on them.
 * Without /usr/bin/chromium the tests are registered as ignored, and a line says so; nothing ever
 * downloads a browser.
 */
import { type Browser, chromium, type Page } from "playwright-core";
import { type SpawnedServer, spawnServer } from "./helpers.ts";

/**
 * The few browser globals the functions run inside the page use. Deno type-checks this file
 * without the DOM library, and string expressions are no way out: the page's CSP forbids eval.
 */
declare const document: {
  getElementById(id: string): { textContent: string | null };
  querySelectorAll(selector: string): Iterable<{ textContent: string | null }>;
};

export const CHROMIUM = "/usr/bin/chromium";
export const HAVE_CHROMIUM = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!HAVE_CHROMIUM) {
  console.log(`Browser tests skipped: Chromium is absent (${CHROMIUM} not found).`);
}

export const LAUNCH = {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
  ],
};

/** What a test gets: a running server and browser, and a way to open a signed-in page. */
export interface Harness {
  server: SpawnedServer;
  browser: Browser;
  /** Opens a page in a fresh context (its own localStorage), signs in as `name`, waits for #general. */
  open(name: string, options?: OpenOptions): Promise<ChatPage>;
}

export interface OpenOptions {
  viewport?: { width: number; height: number };
  colorScheme?: "light" | "dark";
}

/** A signed-in page and what it reported while the test ran. */
export interface ChatPage {
  page: Page;
  /** Console errors, page errors and dialogs: any of them fails a test that checks. */
  problems: string[];
  /** Every URL the page requested. */
  requests: string[];
}

/**
 * Registers a browser test: starts a server with `serverArgs` and a browser, and always closes
 * both, so Deno's leak checks stay on.
 */
export function browserTest(
  name: string,
  fn: (h: Harness) => Promise<void>,
  serverArgs: string[] = ["--port", "0", "--data", ":memory:"],
) {
  Deno.test({
    name,
    ignore: !HAVE_CHROMIUM,
    async fn() {
      const server = await spawnServer(serverArgs);
      let browser: Browser | undefined;
      try {
        browser = await chromium.launch(LAUNCH);
        const b = browser;
        await fn({
          server,
          browser: b,
          open: (who, options) => openChat(b, server.url, who, options),
        });
      } finally {
        await browser?.close();
        await server.stop();
      }
    },
  });
}

export async function openChat(
  browser: Browser,
  url: string,
  name: string,
  options: OpenOptions = {},
): Promise<ChatPage> {
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 1280, height: 800 },
    colorScheme: options.colorScheme ?? "light",
  });
  const page = await context.newPage();
  const chat = watch(page);
  await page.goto(url);
  await page.getByLabel("Name").fill(name);
  await page.getByRole("button", { name: "Join chat" }).click();
  await waitJoined(page, "general");
  return chat;
}

/** Records console errors, page errors, dialogs and requests of `page`. */
export function watch(page: Page): ChatPage {
  const chat: ChatPage = { page, problems: [], requests: [] };
  page.on("console", (m) => {
    // A WebSocket that cannot connect while the server is down logs an error; that is expected.
    if (m.type() === "error" && !m.text().includes("WebSocket connection")) {
      chat.problems.push(`console: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => chat.problems.push(`pageerror: ${e.message}`));
  page.on("dialog", (d) => {
    chat.problems.push(`dialog: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on("request", (r) => chat.requests.push(r.url()));
  return chat;
}

/** Waits until the page shows `room` and has its `joined` reply. */
export async function waitJoined(page: Page, room: string) {
  await page.waitForFunction(
    (r) =>
      document.getElementById("view-title").textContent === `# ${r}` &&
      /online/.test(document.getElementById("view-sub").textContent ?? ""),
    room,
  );
}

/** The texts of the stored (not pending) messages on screen. */
export function messageTexts(page: Page): Promise<string[]> {
  return page.locator("#messages .msg .text").allTextContents();
}

/** Waits until a stored message with exactly `text` is on screen. */
export async function waitMessage(page: Page, text: string) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#messages .msg .text")].some((e) => e.textContent === t),
    text,
  );
}

/** Types `text` into the composer and presses Enter. */
export async function say(page: Page, text: string) {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}
