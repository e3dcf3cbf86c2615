// @ts-check
/// <reference lib="dom" />
/** Sidebar lists: rooms with badges, the room's members with online dots, conversations. */

import { byId, h, setText, syncList } from "./dom.js";
import { avatar } from "./render.js";
import { nameKey } from "./wire.js";

/**
 * Marks a row active or unread, labels its button for screen readers and sets its badge.
 * @param {HTMLElement} li @param {boolean} active @param {number} unread @param {string} label
 */
function mark(li, active, unread, label) {
  const btn = li.querySelector(".entry");
  li.classList.toggle("active", active);
  li.classList.toggle("unread", unread > 0);
  btn?.setAttribute("aria-label", label + (unread ? `, ${unread} unread` : ""));
  btn?.toggleAttribute("aria-current", active);
  setText(li.querySelector(".count") ?? li, unread > 99 ? "99+" : unread ? String(unread) : "");
}

/** @param {string} cls */
const span = (cls, text = "") => h("span", { class: cls }, text);
/** @param {Record<string, string>} attrs @param {Node[]} kids */
const button = (attrs, ...kids) => h("button", { class: "entry", ...attrs }, ...kids);
/** @param {string} id */
const el = (id) => byId(id, HTMLElement);

/** Redraws the lists from `state`. @param {import("./state.js").ChatState} state */
export function renderSidebar(state) {
  syncList(el("rooms"), [...state.rooms.values()], (r) => r.name, (r) => [
    button(
      { "data-room": r.name },
      span("hash", "#"),
      span("name", r.name),
      span("badge at", "@"),
      span("badge count"),
    ),
    h("button", {
      class: "leave",
      "data-leave": r.name,
      "aria-label": `Leave ${r.name}`,
    }, "×"),
  ], (li, r) => {
    mark(li, state.viewing("room", r.name), r.unread, r.name + (r.mentions ? ", mentioned" : ""));
    li.classList.toggle("mentioned", r.mentions > 0);
    li.classList.toggle("joining", !r.everJoined);
  });

  const room = state.currentRoom, me = (/** @type {string} */ n) => nameKey(n) === state.meKey;
  // Members are a room's; a conversation has none to list, so no empty heading either.
  el("members-title").hidden = el("members").hidden = !room;
  setText(el("members-title"), room ? `Members · ${room.members.size}` : "Members");
  const members = [...room?.members.values() ?? []].sort((a, b) =>
    +me(b) - +me(a) || a.localeCompare(b)
  );
  syncList(el("members"), members, nameKey, (name) => {
    const inner = [
      avatar(name),
      span("dot on"),
      span("name", name),
      span("you", me(name) ? "you" : ""),
    ];
    return [
      me(name)
        ? h("span", { class: "entry" }, ...inner)
        : button({ "data-dm": name, "aria-label": `${name}, online: message directly` }, ...inner),
    ];
  });

  el("dms-empty").hidden = state.dms.size > 0;
  syncList(el("dms"), [...state.dms.values()], (c) => nameKey(c.peer), (c) => [
    button(
      { "data-dm": c.peer },
      avatar(c.peer),
      span("dot"),
      span("name", c.peer),
      span("badge count"),
    ),
  ], (li, c) => {
    const online = state.isOnline(c.peer);
    li.querySelector(".dot")?.classList.toggle("on", online);
    mark(li, state.viewing("dm", nameKey(c.peer)), c.unread, c.peer + (online ? "" : ", offline"));
  });
}
