// @ts-check
/// <reference lib="dom" />
/** What the page knows: rooms (members, messages by seq, unread, typing), conversations. */

import { nameKey } from "./wire.js";

/** Names asked for per `members` page at least; the server's default page. */
export const MEMBERS_PAGE = 100;
/** The most names one `members` request may ask for (the server's limit). */
export const MEMBERS_PAGE_MAX = 500;

/** How long a typing notice shows without a new one, in ms. */
export const TYPING_SHOWN_MS = 3000;

/** A timeline entry: a message, or a system line (no `from`). */
/** @typedef {{ key: string, from?: string, text: string, ts: number, divider?: boolean }} Item */

let lines = 0;

/**
 * Roster is a room's member list as far as the page has it. The server lists a room's members in
 * the order of its own name key and sends them a page at a time (`joined` carries the first,
 * `members` pages on from a name, `after`), so what is held is a prefix of its list, plus the
 * exact `count`. The reader is held apart and shown first.
 *
 * The server's key also folds lookalikes (in its order `m00010` comes before `m00002`, since 1 and
 * l look alike), which the page cannot compute; so the order of what is held is the order pages
 * came in, and pages are placed by the names they start after, never by comparing keys. Only a
 * name joining between pages is placed by the page's own key, near where the server has it; the
 * next fetch of that stretch puts it right.
 *
 * A page is the server's truth for the names between its `after` and its last name, so it
 * replaces what was held there. That is how a presence frame with `more` (more changed than it
 * names) is handled: every name held turns stale, and the rows on screen are fetched again
 * (`want`), each page replacing its stretch; stale rows scrolled to later are fetched then.
 */
export class Roster {
  /** Members in the room, the reader included: the server's count. */
  count = 0;
  /** @type {string[]} the other members held, in the server's order */
  names = [];
  /** @type {string[]} the name key of each of `names` */
  #keys = [];
  /** @type {Map<string, number>} by name key, everyone held (the reader too): the generation it was last confirmed in */
  #gens = new Map();
  /** Bumped by `stale()`: names confirmed before are shown but fetched again. */
  #gen = 0;
  #me = "";
  /** The reader's name, when they are in the room. */
  me = "";
  /** The last name of the prefix held ("" before any): the next page's `after`. */
  tail = "";
  /** The prefix is the whole list: no page is left to ask for. */
  complete = true;
  /** @type {string[]} the `after` of each `members` request awaiting its reply, oldest first */
  asked = [];

  /** @param {string} key */
  has(key) {
    return this.#gens.has(key);
  }

  /** Rows held: the reader's and the prefix of the others. */
  get held() {
    return this.names.length + +!!this.me;
  }

  /** Rows to show: the reader first (when listed), then everyone else the count says is here. */
  get rows() {
    return Math.max(this.count, this.held);
  }

  /** The name on `row` (the reader's row first), or undefined while its page is not here. */
  /** @param {number} row */
  at(row) {
    return this.me && !row ? this.me : this.names[row - +!!this.me];
  }

  /**
   * Starts over from a `joined`: its first page and count (a server without counts sends
   * everyone, so the page is then the whole list). The reader is in the room, wherever their
   * name falls in the list; "" forgets everyone (the connection dropped).
   * @param {string[]} names @param {number | undefined} count @param {string} me
   */
  reset(names, count, me) {
    this.#me = nameKey(me);
    this.me = me;
    this.#gens = new Map(me ? [[this.#me, 0]] : []);
    this.names = [];
    this.#keys = [];
    this.asked = [];
    this.tail = "";
    this.page("", names, count ?? names.length, undefined);
    this.complete = count === undefined || count <= names.length;
  }

  /**
   * Takes the page of names that follows `after` ("": from the start), ending at `next` when more
   * follow: it replaces what was held from `after` to its last name. Held names past the page's
   * last one that it does not list may be in its stretch or past it; they stay, stale, until a
   * later page decides. A page whose `after` is no longer held has no place and is dropped.
   * @param {string} after @param {string[]} names @param {number} count @param {string | undefined} next
   */
  page(after, names, count, next) {
    const keys = this.#keys, gens = this.#gens, a = after && nameKey(after);
    this.count = count;
    // After the tail (or the reader, who is not in `keys`): an append.
    const from = !a ? 0 : a === nameKey(this.tail) ? keys.length : keys.indexOf(a) + 1;
    if (!from && a) return;
    const listed = new Set(names.map(nameKey));
    let to = next === undefined ? keys.length : from;
    for (let i = from; i < keys.length && next !== undefined; i++) {
      if (listed.has(keys[i])) to = i + 1;
    }
    const reachesEnd = to === keys.length;
    for (const key of keys.splice(from, to - from)) gens.delete(key);
    /** @type {string[]} */
    const fresh = [];
    for (const name of names) {
      const key = nameKey(name);
      // Held elsewhere already: keep one.
      if (key !== this.#me && gens.has(key)) continue;
      gens.set(key, this.#gen);
      if (key !== this.#me) fresh.push(name), keys.splice(from + fresh.length - 1, 0, key);
    }
    this.names.splice(from, to - from, ...fresh);
    // A page that reaches the end of the prefix moves the end.
    if (reachesEnd || !this.tail) {
      this.tail = next ?? names.at(-1) ?? this.tail;
      this.complete = next === undefined;
    }
  }

  /**
   * Someone joined; returns whether they were not known here before. They are placed only if
   * their place is inside the prefix held (judged by the page's key). `counted`: the caller sets
   * `count` itself.
   * @param {string} name
   */
  join(name, counted = false) {
    const key = nameKey(name), keys = this.#keys;
    if (this.#gens.has(key)) return false;
    if (!counted) this.count++;
    if (this.complete || key < nameKey(this.tail)) {
      this.#gens.set(key, this.#gen);
      const i = keys.findIndex((k) => k > key), at = i < 0 ? keys.length : i;
      this.names.splice(at, 0, name);
      keys.splice(at, 0, key);
    }
    return true;
  }

  /** Someone left; returns whether they were held here. @param {string} name */
  leave(name, counted = false) {
    const key = nameKey(name), i = this.#keys.indexOf(key);
    // The reader stays, whatever a frame says, for as long as this page is in the room.
    const was = key !== this.#me && this.#gens.delete(key);
    if (!counted && (was || !this.complete)) this.count = Math.max(0, this.count - 1);
    if (i >= 0) this.names.splice(i, 1), this.#keys.splice(i, 1);
    return was;
  }

  /** More changed than was said: every name held is shown still, but fetched again. */
  stale() {
    this.#gen++;
  }

  /**
   * The page to ask for so that rows `first` to `end` (exclusive) are here and current, or null:
   * a stale row in that stretch first, then the rows past the prefix. One request per `after`.
   * @param {number} first @param {number} end
   * @returns {{ after: string, limit: number } | null}
   */
  want(first, end) {
    const me = +!!this.me, held = this.held;
    let row = Math.max(first, me);
    while (row < Math.min(end, held) && this.#gens.get(this.#keys[row - me]) === this.#gen) row++;
    const ask = row < Math.min(end, held)
      ? { after: this.names[row - me - 1] ?? "", rows: end - row }
      : !this.complete && end > held
      ? { after: this.tail, rows: end - held }
      : null;
    if (!ask || this.asked.includes(ask.after)) return null;
    return {
      after: ask.after,
      limit: Math.min(MEMBERS_PAGE_MAX, Math.max(MEMBERS_PAGE, ask.rows)),
    };
  }
}

/** Room is one open room. */
export class Room {
  /** @type {import("./wire.js").ChatMessage[]} sorted by seq, each seq once */
  messages = [];
  /** @type {(Item & { after: number })[]} join/leave lines, each after message seq `after` */
  system = [];
  members = new Roster();
  /** A `joined` came on this connection; `everJoined`: on any, so a rejoin sends `since`. */
  joined = false;
  everJoined = false;
  unread = 0;
  mentions = 0;
  /** The account's read marker (the server's, or ahead of it by what this page just read). */
  lastRead = 0;
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

  /** Others' messages after the read marker, the ones not loaded counted too. @param {string} meKey */
  unreadSince(meKey) {
    const after = this.lastRead;
    let n = after && this.minSeq > after + 1 ? this.minSeq - after - 1 : 0;
    for (const m of this.messages) if (m.seq > after && nameKey(m.from) !== meKey) n++;
    return n;
  }

  /** Puts the "new since you left" line after the read marker (once; none when nothing is new). */
  divide() {
    this.system = this.system.filter((s) => !s.divider);
    if (!this.messages.some((m) => m.seq > this.lastRead)) return;
    const at = this.system.findIndex((s) => s.after > this.lastRead);
    const line = {
      key: "divider",
      after: this.lastRead,
      text: "New since you left",
      ts: 0,
      divider: true,
    };
    this.system.splice(at < 0 ? this.system.length : at, 0, line);
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
