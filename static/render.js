// @ts-check
/// <reference lib="dom" />
/** Message rows grouped by sender and minute; user text goes in as text nodes only. */

import { h } from "./dom.js";
import { segments } from "./linkify.js";
import { nameKey } from "./wire.js";

/** A row; `sig` changes whenever the row would render differently. */
/** @typedef {{ sig: string, build: () => HTMLElement }} Row */

/**
 * A round avatar with the first letter, its colour picked by the name. The letter is drawn by CSS
 * (`data-initial`), not written as text: in a button named "bob, online: …" a text "B" would be
 * visible text missing from the name (WCAG 2.5.3 label in name; axe label-content-name-mismatch).
 * @param {string} name
 */
export function avatar(name) {
  let x = 0;
  for (const c of nameKey(name)) x = (x * 31 + (c.codePointAt(0) ?? 0)) % 360;
  const initial = [...name][0].toUpperCase();
  const a = h("span", { class: "avatar", "aria-hidden": "true", "data-initial": initial });
  a.style.background = `hsl(${x} 55% 34%)`;
  return a;
}

/** Local time (and date unless today), with the full date on hover. @param {number} ts */
function time(ts, cls = "time") {
  const d = new Date(ts), today = d.toDateString() === new Date().toDateString();
  const title = d.toLocaleString([], { dateStyle: "full", timeStyle: "medium" });
  const text = d.toLocaleString([], {
    dateStyle: today ? undefined : "medium",
    timeStyle: "short",
  });
  return h("time", { class: cls, datetime: d.toISOString(), title }, text);
}

/**
 * A message row; `start` opens a group with avatar, name and time. Links open in a new tab
 * without opener or referrer; a mention of the reader is highlighted.
 * @param {{ from: string, text: string, ts: number }} m @param {boolean} start @param {string} meKey
 */
export function messageRow(m, start, meKey) {
  const body = h("div", { class: "text" });
  let mentioned = false;
  for (const s of segments(m.text)) {
    const me = !!s.mention && nameKey(s.mention) === meKey;
    mentioned ||= me;
    body.append(
      s.href
        ? h("a", { href: s.href, target: "_blank", rel: "noopener noreferrer" }, s.text)
        : s.mention
        ? h("span", { class: me ? "mention me" : "mention" }, s.text)
        : s.text,
    );
  }
  const li = h("li", { class: `msg${start ? " start" : ""}${mentioned ? " mentioned" : ""}` });
  if (!start) li.append(time(m.ts, "time gutter"), h("div", {}, body));
  else {li.append(
      avatar(m.from),
      h("div", {}, h("div", { class: "meta" }, h("b", {}, m.from), time(m.ts)), body),
    );}
  return li;
}

/** Same sender, same minute. @param {{ from?: string, ts: number } | null | undefined} a @param {{ from?: string, ts: number }} b */
const continues = (a, b) =>
  !!a?.from && !!b.from && nameKey(a.from) === nameKey(b.from) &&
  (a.ts / 6e4 | 0) === (b.ts / 6e4 | 0);

/** @param {import("./state.js").Item[]} items @param {string} meKey @returns {Row[]} */
export const layoutRows = (items, meKey) =>
  items.map((it, i) => {
    const start = !continues(items[i - 1], it), from = it.from;
    return {
      sig: start ? `${it.key}+` : it.key,
      build: () =>
        from
          ? messageRow({ ...it, from }, start, meKey)
          : it.divider
          ? h("li", { class: "divider", role: "separator" }, it.text)
          : h("li", { class: "sys" }, `${it.text} `, time(it.ts)),
    };
  });

/**
 * Rows for unacknowledged messages below `prev`; failed ones say why and offer Retry and Discard.
 * @param {import("./outbox.js").Entry[]} entries @param {{ from?: string, ts: number } | null} prev
 * @param {string} me
 */
export const pendingRows = (entries, prev, me) =>
  entries.map((e) => {
    const cur = { from: me, text: e.text, ts: e.ts },
      li = messageRow(cur, !continues(prev, cur), nameKey(me));
    /** @param {string} what */
    const button = (what) => h("button", { class: "link", [`data-${what}`]: e.cid }, what);
    prev = cur;
    li.classList.add("pending");
    li.lastElementChild?.append(h(
      "div",
      { class: "status" },
      ...e.state === "failed"
        ? [
          h("span", { class: "error" }, `Not sent: ${e.error}`),
          button("Retry"),
          button("Discard"),
        ]
        : [e.state === "sent" ? "Sending…" : "Waiting for connection…"],
    ));
    return li;
  });
