// @ts-check
/// <reference lib="dom" />
/** What the page knows: rooms (members, messages by seq, unread, typing), conversations. */

import { nameKey } from "./wire.js";

/** How long a typing notice shows without a new one, in ms. */
export const TYPING_SHOWN_MS = 3000;

/** A timeline entry: a message, or a system line (no `from`). */
/** @typedef {{ key: string, from?: string, text: string, ts: number }} Item */

let lines = 0;

/** Room is one open room. */
export class Room {
  /** @type {import("./wire.js").ChatMessage[]} sorted by seq, each seq once */
  messages = [];
  /** @type {(Item & { after: number })[]} join/leave lines, each after message seq `after` */
  system = [];
  /** @type {Map<string, string>} name key → name */
  members = new Map();
  /** A `joined` came on this connection; `everJoined`: on any, so a rejoin sends `since`. */
  joined = false;
  everJoined = false;
  unread = 0;
  mentions = 0;
  /** A `before` page came back short: nothing older exists. */
  reachedStart = false;
  loadingOlder = false;
  /** @type {("before" | "after")[]} history requests awaiting replies */
  historyQueue = [];
  /** @type {Map<string, { name: string, until: number }>} */
  typing = new Map();

  /** @param {string} name */
  constructor(name) {
    this.name = name;
  }

  /** The highest seq seen: a rejoin's `since`. */
  get maxSeq() {
    return this.messages.at(-1)?.seq ?? 0;
  }

  get minSeq() {
    return this.messages[0]?.seq ?? 0;
  }

  get hasOlder() {
    return !this.reachedStart && this.minSeq > 1;
  }

  /** Adds a message unless its seq is here; returns whether it was new. */
  /** @param {import("./wire.js").ChatMessage} msg */
  add(msg) {
    const list = this.messages;
    let i = list.length; // live messages arrive in order: search from the end
    while (i > 0 && list[i - 1].seq > msg.seq) i--;
    if (list[i - 1]?.seq === msg.seq) return false;
    list.splice(i, 0, msg);
    return true;
  }

  /** @param {string} text @param {number} ts */
  addSystem(text, ts) {
    this.system.push({ key: `s${++lines}`, after: this.maxSeq, text, ts });
  }

  /** Messages and system lines, merged in order. */
  timeline() {
    /** @type {Item[]} */
    const out = [];
    let s = 0;
    for (const m of this.messages) {
      while (this.system[s]?.after < m.seq) out.push(this.system[s++]);
      out.push({ key: `m${m.seq}`, from: m.from, text: m.text, ts: m.ts });
    }
    return out.concat(this.system.slice(s));
  }

  typists(now = Date.now()) {
    for (const [k, t] of this.typing) if (t.until <= now) this.typing.delete(k);
    return [...this.typing.values()].map((t) => t.name);
  }
}

/** Conversation is a direct conversation, kept in memory for this session. */
export class Conversation {
  /** @type {import("./wire.js").DirectMessage[]} */
  messages = [];
  unread = 0;
  #seen = new Set();

  /** @param {string} peer */
  constructor(peer) {
    this.peer = peer;
  }

  /** Adds a dm unless its sender sent this cid before (a resend). */
  /** @param {import("./wire.js").DirectMessage} dm */
  add(dm) {
    const id = `${nameKey(dm.from)} ${dm.cid}`;
    if (dm.cid && this.#seen.has(id)) return false;
    this.#seen.add(id);
    this.messages.push(dm);
    return true;
  }

  /** @returns {Item[]} */
  timeline() {
    return this.messages.map((m, i) => ({ ...m, key: `d${i}` }));
  }
}

/** ChatState holds every room and conversation, and what is on screen. */
export class ChatState {
  me = "";
  meKey = "";
  historyLimit = 200;
  /** @type {Map<string, Room>} in the order they were opened */
  rooms = new Map();
  /** @type {Map<string, Conversation>} by the other person's name key */
  dms = new Map();
  /** @type {{ kind: "room" | "dm", id: string } | null} id: room name or name key */
  view = null;

  /** @param {string} name */
  setMe(name) {
    this.me = name;
    this.meKey = nameKey(name);
  }

  /** @param {string} name */
  room(name) {
    if (!this.rooms.has(name)) this.rooms.set(name, new Room(name));
    return /** @type {Room} */ (this.rooms.get(name));
  }

  /** @param {string} peer */
  conversation(peer) {
    const k = nameKey(peer);
    if (!this.dms.has(k)) this.dms.set(k, new Conversation(peer));
    return /** @type {Conversation} */ (this.dms.get(k));
  }

  get currentRoom() {
    return this.view?.kind === "room" ? this.rooms.get(this.view.id) : undefined;
  }

  get currentDm() {
    return this.view?.kind === "dm" ? this.dms.get(this.view.id) : undefined;
  }

  /** @param {"room" | "dm"} kind @param {string} id */
  viewing(kind, id) {
    return this.view?.kind === kind && this.view.id === id;
  }

  /** Whether `name` is in a room this page sees. @param {string} name */
  isOnline(name) {
    return [...this.rooms.values()].some((r) => r.members.has(nameKey(name)));
  }

  totalUnread() {
    return [...this.rooms.values(), ...this.dms.values()].reduce((n, x) => n + x.unread, 0);
  }
}
