/**
 * Every constant the browser shares with the server agrees with the server's (issue 13: "constants
 * the browser shares with the server come from one place: the welcome's limits, or a test that
 * ties them"). The welcome carries maxTextChars and historyLimit, which the page takes over; the
 * page's fallbacks before a welcome, and the rules it checks on its own (typing interval, name and
 * room rules, the held-name reason, the history page), are tied here to the server's constants.
 *
 * static/ is plain ES modules: the ones without top-level DOM access are imported (by URL at run
 * time, so the type check does not follow their DOM types here); app.js, which starts the page
 * when imported, is read as text.
 */
import assert from "node:assert/strict";
import { TYPING_INTERVAL_MS } from "../hub.ts";
import { NAME_HELD_ELSEWHERE } from "../hub/sessions.ts";
import { DEFAULTS, parseConfig, welcomeLimits } from "../ops/config.ts";
import {
  MAX_HISTORY_LIMIT,
  MAX_NAME_CHARS,
  MAX_ROOM_CHARS,
  nameProblem,
  normalizeRoom,
} from "../protocol/protocol.ts";

const staticModule = (file: string) => import(new URL(`../static/${file}`, import.meta.url).href);

const composer: {
  TYPING_INTERVAL_MS: number;
  Composer: new (...elements: unknown[]) => { limit: number };
} = await staticModule("composer.js");
const state: { TYPING_SHOWN_MS: number; ChatState: new () => { historyLimit: number } } =
  await staticModule("state.js");
const wire: { nameProblem(name: string): string; roomName(input: string): string } =
  await staticModule("wire.js");
const linkify: { segments(text: string): { text: string; mention?: string }[] } =
  await staticModule("linkify.js");
const appJs = await Deno.readTextFile(new URL("../static/app.js", import.meta.url));

/** The value of `const NAME = <number>;` in app.js, which cannot be imported outside a page. */
function appConstant(name: string): number {
  const m = new RegExp(`^const ${name} = ([0-9_]+);`, "m").exec(appJs);
  assert.ok(m, `static/app.js declares ${name}`);
  return Number(m[1].replaceAll("_", ""));
}

/** A dummy element: the composer only sets handlers on what it is given. */
const element = () => ({});

/** The limits of a welcome from a server run with default flags. */
function defaultWelcomeLimits(): Record<string, unknown> {
  const parsed = parseConfig([]);
  if (parsed.kind !== "run") throw new Error(`Cannot parse default flags: ${parsed.kind}`);
  return welcomeLimits(parsed.config);
}

Deno.test("the composer sends typing notices no closer than the server relays them", () => {
  assert.equal(composer.TYPING_INTERVAL_MS, TYPING_INTERVAL_MS);
});

Deno.test("a typing indicator stays lit from one relayed notice to the next", () => {
  assert.ok(
    state.TYPING_SHOWN_MS > TYPING_INTERVAL_MS,
    `TYPING_SHOWN_MS ${state.TYPING_SHOWN_MS} must outlast the ${TYPING_INTERVAL_MS} ms interval`,
  );
});

Deno.test("before a welcome, the page assumes the server's default text and history limits", () => {
  const limits = defaultWelcomeLimits();
  const box = new composer.Composer(element(), element(), element(), element(), () => {}, () => {});
  assert.equal(box.limit, DEFAULTS.maxTextChars);
  assert.equal(box.limit, limits.maxTextChars, "and the welcome says the same by default");
  assert.equal(new state.ChatState().historyLimit, MAX_HISTORY_LIMIT);
  assert.equal(limits.historyLimit, MAX_HISTORY_LIMIT);
  // app.js caps the welcome's historyLimit at the protocol's: the literal there is that limit.
  assert.match(
    appJs,
    new RegExp(`Math\\.min\\(${MAX_HISTORY_LIMIT}, m\\.limits\\.historyLimit\\)`),
  );
});

Deno.test("a scroll-back page asks for no more lines than history allows", () => {
  const page = appConstant("OLDER_PAGE");
  assert.ok(page >= 1 && page <= MAX_HISTORY_LIMIT, `OLDER_PAGE ${page}`);
});

Deno.test("the page takes the server's held-name reason for what it is, and waits out an idle timeout", () => {
  assert.ok(appJs.includes(JSON.stringify(NAME_HELD_ELSEWHERE)), "app.js compares the same reason");
  const heldRetry = appConstant("HELD_RETRY_MS");
  assert.ok(
    heldRetry > DEFAULTS.idleTimeoutSeconds * 1000,
    `HELD_RETRY_MS ${heldRetry} must outlast the default idle timeout, which drops the old socket`,
  );
});

Deno.test("the browser accepts and refuses the same names as the server", () => {
  const names = [
    "alice",
    "Zoë_2.0-x",
    "अनिल",
    "สมชาย",
    "Zoe\u0308",
    "\u0301abc",
    "Z\u0301\u0302\u0303\u0304algo",
    "a b",
    "<b>",
    "a@b",
    "emoji😀",
    "alice\u3164",
  ];
  for (const name of names) {
    assert.equal(wire.nameProblem(name) === "", nameProblem(name) === null, JSON.stringify(name));
  }
});

Deno.test("the browser's name length is the server's: MAX_NAME_CHARS passes, one more does not", () => {
  for (const name of ["x".repeat(MAX_NAME_CHARS), "й".repeat(MAX_NAME_CHARS)]) {
    assert.equal(nameProblem(name), null);
    assert.equal(wire.nameProblem(name), "", name);
  }
  const long = "x".repeat(MAX_NAME_CHARS + 1);
  assert.notEqual(nameProblem(long), null);
  assert.equal(wire.nameProblem(long), `Names are at most ${MAX_NAME_CHARS} characters.`);
});

Deno.test("the browser makes the same room of a name as the server, and refuses the same ones", () => {
  const inputs = [
    "general",
    "General",
    "a_b-c9",
    "x".repeat(MAX_ROOM_CHARS),
    "x".repeat(MAX_ROOM_CHARS + 1),
    "",
    "a.b",
    "a b",
    "été",
    "<b>",
  ];
  for (const input of inputs) {
    assert.equal(wire.roomName(input), normalizeRoom(input) ?? "", JSON.stringify(input));
  }
  assert.match(appJs, new RegExp(`room_invalid: "names are 1-${MAX_ROOM_CHARS} of`));
});

Deno.test("an @mention takes in every character a name may hold", () => {
  // A name that ends in "." loses it in a mention ("thanks @bob." is bob): linkify's choice.
  for (
    const name of ["alice", "Иван", "李雷", "Zoë_2.0-x", "a.b", "अनिल", "x".repeat(MAX_NAME_CHARS)]
  ) {
    assert.equal(nameProblem(name), null, name);
    const found = linkify.segments(`hi @${name}, see`).filter((s) => s.mention !== undefined);
    assert.deepEqual(found.map((s) => s.mention), [name]);
  }
});
