// @ts-check
/// <reference lib="dom" />
/** The wire format as the browser sees it: frame splitting, field checks, names and cids. */

/** @typedef {{ room: string, seq: number, from: string, text: string, ts: number, cid?: string }} ChatMessage */
/** @typedef {{ from: string, to: string, text: string, ts: number, cid?: string }} DirectMessage */
/** @typedef {{ type: string, [key: string]: any }} ServerMsg */

/** @param {unknown} v @returns {v is string} */
export const isStr = (v) => typeof v === "string";
/** @param {unknown} v @returns {v is number} */
export const isNum = (v) => Number.isFinite(v);

/** Splits a frame into its messages, one JSON object per line; a bad line is skipped. */
/** @param {string} data @returns {ServerMsg[]} */
export const splitFrame = (data) =>
  data.split("\n").flatMap((line) => {
    try {
      const v = JSON.parse(line);
      return isStr(v?.type) ? [v] : [];
    } catch {
      return [];
    }
  });

/** The strings of a list of names (none if it is not a list). @param {unknown} list */
export const asNames = (list) => Array.isArray(list) ? list.filter(isStr) : [];

/** @param {any} m @returns {ChatMessage | null} */
export const asMessage = (m) =>
  isStr(m?.room) && isNum(m.seq) && isStr(m.from) && isStr(m.text) && isNum(m.ts) ? m : null;

/** @param {any} m @returns {DirectMessage | null} */
export const asDirect = (m) =>
  isStr(m?.from) && isStr(m.to) && isStr(m.text) && isNum(m.ts) ? m : null;

/** @param {unknown} list */
export const asMessages = (list) =>
  Array.isArray(list) ? list.map(asMessage).filter((m) => m !== null) : [];

/**
 * A name compared case-insensitively (NFKC, lower case). The server also folds lookalikes
 * (`аlice` with a Cyrillic а is `alice` there), so names equal here are one name there too, and
 * the server keeps two names that fold alike from being online at once.
 * @param {string} name
 */
export const nameKey = (name) => name.normalize("NFKC").toLowerCase();

/** Non-ASCII characters that show as nothing or as blank space: INVISIBLE in protocol.ts. */
const INVISIBLE =
  /[[\p{Default_Ignorable_Code_Point}\p{Cf}\p{White_Space}\u2800\u{1D159}]--[\0-\x7f]]/v;

/** The code point of `c` as U+XXXX. @param {string} c */
const hex = (c) => `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;

/** Why the server would refuse `name`, or "". @param {string} name */
export const nameProblem = (name) => {
  const invisible = INVISIBLE.exec(name);
  return !name
    ? "Enter a name."
    : [...name].length > 32
    ? "Names are at most 32 characters."
    : invisible
    ? `Names may not hold invisible characters (${hex(invisible[0])}).`
    : !/^[\p{L}\p{N}_.-][\p{L}\p{M}\p{N}_.-]*$/u.test(name)
    ? "Names may use only letters, digits, _ - and ."
    : /\p{M}{4,}/u.test(name)
    ? "Names may not stack more than 3 combining marks."
    : "";
};

/** The room the server would make of `input`, or "" if it would refuse it. @param {string} input */
export function roomName(input) {
  const r = input.trim().replace(/^#/, "").toLowerCase();
  return /^[a-z0-9_-]{1,32}$/.test(r) ? r : "";
}

/** A random cid, 128 bits (crypto.randomUUID would need a secure context). */
export const newCid = () =>
  [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(36).padStart(2, "0")).join(
    "",
  );
