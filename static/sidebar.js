// @ts-check
/// <reference lib="dom" />
/**
 * Sidebar lists: rooms with badges, the room's members with online dots, conversations.
 *
 * The member list is virtualized, because a room may hold 10,000 people: it has a row for every
 * member (its height is the count's), but only the rows in and near its scrolled view are in the
 * DOM, each with its position in the whole list for screen readers. Rows whose page has not come
 * yet, or whose names may have changed, ask for their page (`onNeed`). A scroll redraws this list
 * alone.
 */

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

/** Every member row's height in px; style.css gives `#members > li` the same. */
export const MEMBER_ROW_PX = 36;
/** Rows kept in the DOM beyond each edge of the member list's view. */
export const MEMBER_OVERSCAN_ROWS = 5;

/** A member's row: the reader's is not a button. @param {string} name @param {string} me */
function entry(name, me) {
  const inner = [avatar(name), span("dot on"), span("name", name)];
  if (name === me) inner.push(span("you", "you"));
  return name === me
    ? h("span", { class: "entry" }, ...inner)
    : button({ "data-dm": name, "aria-label": `${name}, online: message directly` }, ...inner);
}

/** MemberList draws one room's roster into a scrolling box, a window of rows at a time. */
export class MemberList {
  /** @type {import("./state.js").Room | undefined} */
  #room;

  /**
   * `scroller` scrolls `list`; `onNeed(first, end)` asks for rows `first` to `end` (exclusive)
   * to be held and current.
   * @param {HTMLElement} scroller @param {HTMLElement} list
   * @param {(first: number, end: number) => void} onNeed
   */
  constructor(scroller, list, onNeed) {
    this.scroller = scroller;
    this.list = list;
    this.onNeed = onNeed;
    // Scroll events come at most once a frame, so drawing here costs one window per frame.
    scroller.addEventListener("scroll", () => this.draw(), { passive: true });
  }

  /** Shows `room`'s members; another room starts at the top. @param {import("./state.js").Room | undefined} room */
  show(room) {
    if (room !== this.#room) this.scroller.scrollTop = 0;
    this.#room = room;
    this.draw();
  }

  draw() {
    const r = this.#room?.members;
    if (!r) return;
    const rows = r.rows,
      top = this.scroller.scrollTop,
      px = MEMBER_ROW_PX,
      more = MEMBER_OVERSCAN_ROWS;
    // Hidden (a conversation is open) it has no height: draw as if a window tall, then stop.
    const height = this.scroller.clientHeight || innerHeight, list = this.list;
    const first = Math.max(0, Math.floor(top / px) - more);
    const end = Math.min(rows, Math.ceil((top + height) / px) + more);
    list.style.height = `${rows * px}px`;
    list.style.paddingTop = `${first * px}px`;
    /** @type {number[]} */
    const shown = [];
    for (let row = first; row < end; row++) shown.push(row);
    syncList(list, shown, (row) => {
      const name = r.at(row);
      return name === undefined ? `…${row}` : nameKey(name);
    }, (row) => {
      const name = r.at(row);
      return [name === undefined ? span("entry placeholder", "Loading…") : entry(name, r.me)];
    }, (li, row) => {
      li.ariaSetSize = String(rows);
      li.ariaPosInSet = String(row + 1);
    });
    list.ariaBusy = String(end > r.held && !r.complete);
    this.onNeed(first, end);
  }
}

/**
 * Redraws the lists from `state`.
 * @param {import("./state.js").ChatState} state @param {MemberList} memberList
 */
export function renderSidebar(state, memberList) {
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

  const room = state.currentRoom;
  // Members are a room's; a conversation has none to list, so no empty heading either.
  el("members-title").hidden = el("members-scroll").hidden = el("members").hidden = !room;
  setText(
    el("members-title"),
    room ? `Members · ${room.members.count.toLocaleString()}` : "Members",
  );
  memberList.show(room);

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
