// @ts-check
/// <reference lib="dom" />
/** Splits text into text, links and @mentions; only http(s) URLs ever become links. */

/** @typedef {{ text: string, href?: string, mention?: string }} Segment */

// A URL runs to a space, quote or angle bracket. A mention is @name not glued to a word before
// it, so user@example.com is not one.
const TOKEN =
  /\bhttps?:\/\/[^\s<>"']+|(?<![\p{L}\p{M}\p{N}_.@-])@[\p{L}\p{N}_.-][\p{L}\p{M}\p{N}_.-]*/giu;

/**
 * Drops sentence punctuation, and a ")" the URL did not open, from the end.
 * @param {string} url
 * @returns {string}
 */
function trimUrl(url) {
  url = url.replace(/[.,;:!?*]+$/, "");
  return url.endsWith(")") && url.split("(").length < url.split(")").length
    ? trimUrl(url.slice(0, -1))
    : url;
}

/** The href of an http(s) URL, or "" for anything else. @param {string} url */
export function safeHref(url) {
  try {
    const u = new URL(url);
    return /^https?:$/.test(u.protocol) ? u.href : "";
  } catch {
    return "";
  }
}

/** Splits `text` in order; the segments' texts joined give it back. @param {string} text */
export function segments(text) {
  /** @type {Segment[]} */
  const out = [];
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    const mention = m[0][0] === "@";
    const token = mention ? m[0].replace(/\.+$/, "") : trimUrl(m[0]); // "thanks @bob." → bob
    const href = mention ? "" : safeHref(token);
    if (!href && !(mention && token.length > 1)) continue;
    if (m.index > last) out.push({ text: text.slice(last, m.index) });
    out.push(href ? { text: token, href } : { text: token, mention: token.slice(1) });
    last = m.index + token.length;
  }
  if (last < text.length) out.push({ text: text.slice(last) });
  return out;
}

/** Whether `text` mentions the name key `meKey`. @param {string} text @param {string} meKey */
export const mentions = (text, meKey) =>
  text.includes("@") &&
  segments(text).some((s) => s.mention?.normalize("NFKC").toLowerCase() === meKey);
