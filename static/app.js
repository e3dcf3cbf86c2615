// @ts-check
/// <reference lib="dom" />
/** Entry point: wires connection, state, outbox and views; every event ends in one redraw. */

import { AccountPanel } from "./account.js";
import { Composer } from "./composer.js";
import { Connection } from "./connection.js";
import { byId, setText } from "./dom.js";
import { mentions } from "./linkify.js";
import { MessageLog } from "./log.js";
import { Notifier, setTitleCount } from "./notify.js";
import { Outbox } from "./outbox.js";
import { layoutRows, pendingRows } from "./render.js";
import { MemberList, renderSidebar } from "./sidebar.js";
import { fetchMode, ready, refusal, Secrets, showLogin } from "./signin.js";
import { ChatState, TYPING_SHOWN_MS } from "./state.js";
import { load, save } from "./storage.js";
import * as wire from "./wire.js";

const { isNum, isStr, nameKey } = wire;
/** Messages per scroll-back page. */
const OLDER_PAGE = 50;
/** How long the page waits after showing a room's newest message before it tells the server, in ms. */
const READ_DELAY_MS = 1000;
/** How long reconnects retry a name held on another instance (idle timeout + slack), in ms. */
const HELD_RETRY_MS = 45_000;
/** Below this width the sidebar is a drawer (as in style.css). */
const NARROW = matchMedia("(max-width: 699px)");

/** Server error codes in plain words. */
const ERRORS = /** @type {Record<string, string>} */ ({
  too_long: "it is too long.",
  rate_limited: "you are sending too fast; wait a moment.",
  not_in_room: "you are not in that room.",
  unknown_user: "that person is not online.",
  unavailable: "the server could not save it; try again.",
  room_invalid: "names are 1-32 of a-z, 0-9, _ and -.",
  too_many_rooms: "you are in too many rooms.",
});

/** @param {string} id */
const el = (id) => byId(id, HTMLElement);
const app = el("app"), menu = el("menu-btn"), pending = el("pending"), banner = el("banner");
const joinInput = byId("join-input", HTMLInputElement), joinError = el("join-error");
const bannerBtn = byId("banner-btn", HTMLButtonElement),
  notifyBtn = byId("notify-btn", HTMLButtonElement);

const state = new ChatState(), outbox = new Outbox(), notifier = new Notifier();
const account = new AccountPanel((m) => conn.send(m));
let identity = load("identity", { name: "", token: "" });
const secrets = new Secrets();
/** @type {import("./signin.js").Mode} */
let mode = { auth: "none", password: false };
let everOnline = false;
/** This page's id in its hellos: a reconnect replaces only its own stale socket, never another tab. */
const TAB = crypto.randomUUID();
/** Another socket of this page took over (4010); stay away until the user says otherwise. */
let replaced = false;
/** The account password typed on the sign-in card: sent in hellos until a welcome, never stored. */
let accountPassword = "";
/** This browser as the sessions list shows it, e.g. "Firefox on Linux". */
const DEVICE = (() => {
  const ua = navigator.userAgent,
    first = (/** @type {[RegExp, string][]} */ list) => list.find(([re]) => re.test(ua))?.[1] ?? "";
  const browser = first([[/Edg\//, "Edge"], [/Firefox\//, "Firefox"], [/Chrome\//, "Chrome"], [
    /Safari\//,
    "Safari",
  ]]) || "Browser";
  const os = first([[/Android/, "Android"], [/iPhone|iPad/, "iOS"], [/Mac OS/, "macOS"], [
    /Windows/,
    "Windows",
  ], [/Linux/, "Linux"]]);
  return os ? `${browser} on ${os}` : browser;
})();
/** Since when reconnects find the name held on another instance (0: they do not). */
let heldSince = 0;
let status = { state: "stopped", retryAt: 0 };

/** The sign-in card with the fields the server's mode asks for. @param {{ error?: string, refused?: "password" | "token" | "account" | "" }} how */
function signIn(how = {}) {
  showLogin(mode, secrets, { name: identity.name, ...how }, (name, password) => {
    if (nameKey(name) !== nameKey(identity.name)) identity = { name, token: "" };
    accountPassword = password;
    start();
  });
}

const composer = new Composer(
  byId("composer", HTMLFormElement),
  byId("message", HTMLTextAreaElement),
  el("counter"),
  el("composer-error"),
  send,
  () => state.view?.kind === "room" && conn.send({ type: "typing", room: state.view.id }),
);
const log = new MessageLog(el("log"), el("messages"), pending, el("new-pill"), loadOlder);
/** Asks for the page of the room's members that rows `first` to `end` lack, if any. */
const memberList = new MemberList(el("members-scroll"), el("members"), (first, end) => {
  const room = state.currentRoom, page = room?.joined && room.members.want(first, end);
  if (!room || !page) return;
  const ask = { type: "members", room: room.name, after: page.after || undefined };
  if (conn.send({ ...ask, limit: page.limit, cid: `members:${room.name}` })) {
    room.members.asked.push(page.after);
  }
});
const conn = new Connection({
  url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`,
  hello() {
    // Another tab may have resumed since and got a newer token.
    const saved = load("identity", identity);
    if (nameKey(saved.name) === nameKey(identity.name)) identity = saved;
    // With a sign-in token the token names the user; a name would be ignored.
    return {
      type: "hello",
      name: mode.auth === "token" ? undefined : identity.name,
      resume: identity.token || undefined,
      password: secrets.password || undefined,
      token: secrets.token || undefined,
      connection: TAB,
      accountPassword: accountPassword || undefined,
      device: DEVICE,
    };
  },
  onMessage(m) {
    if (Object.hasOwn(handlers, m.type)) handlers[m.type](m);
    render();
  },
  onStatus(s, retryAt) {
    status = { state: s, retryAt };
    render();
  },
  onClose: closed,
});

function start() {
  replaced = false;
  app.hidden = false;
  state.setMe(identity.name);
  conn.start();
  render();
}

/** Decides what a close means; returns whether to reconnect. @param {number} code @param {string} reason */
function closed(code, reason) {
  // Presence is unknown until the rejoins answer with each room's members.
  for (const r of state.rooms.values()) {
    r.joined = false;
    r.typing.clear();
    r.members.reset([], 0, "");
  }
  for (const e of outbox.where((e) => e.state === "sent")) e.state = "queued";
  // Reconnecting after 4010 would start a tug of war with the tab that took over.
  replaced = code === 4010;
  // The holder may be our own old connection, which that instance drops within its idle timeout.
  if (code === 4009 && reason === "name taken on another instance" && identity.token) {
    heldSince ||= Date.now();
    if (Date.now() - heldSince < HELD_RETRY_MS) return true;
  }
  heldSince = 0;
  if (code === 4001 && reason === "signed out") {
    // Nothing of this account stays on screen or on disk for whoever uses the browser next.
    save("identity", { name: identity.name, token: "" });
    save("rooms", []);
    sessionStorage.setItem(
      "chat.notice",
      account.signingOut ? "You signed out." : "You were signed out.",
    );
    location.reload();
    return false;
  }
  if (code === 4001) {
    const words = refusal(reason, secrets);
    if (words.refused === "account") accountPassword = "";
    else if (words.refused) secrets.set({ [words.refused]: "" });
    // The server may have been restarted with other sign-in flags: ask it again first.
    void fetchMode().then((m) => {
      mode = m;
      signIn(words);
    });
    return false;
  }
  const error = {
    4000: `The server refused: ${reason || "bad hello"}.`,
    4009: `The name “${identity.name}” is taken, or looks like one that is. If it is yours, ` +
      "enter its password; otherwise pick another name.",
  }[code];
  if (!error) return !replaced;
  identity.token = accountPassword = "";
  signIn({ error, refused: code === 4009 ? "account" : "" });
  return false;
}

/** @type {Record<string, (m: wire.ServerMsg) => void>} */
const handlers = {
  welcome(m) {
    heldSince = 0;
    accountPassword = "";
    account.hasPassword = m.hasPassword === true;
    secrets.accepted = true;
    save("identity", identity = { name: m.name, token: m.resume ?? "" });
    state.setMe(m.name);
    if (isNum(m.limits?.maxTextChars)) composer.limit = m.limits.maxTextChars;
    if (isNum(m.limits?.historyLimit)) state.historyLimit = Math.min(200, m.limits.historyLimit);
    everOnline = true;
    // The account's rooms, joined on any device, come back here too.
    for (const name of wire.asNames(m.rooms)) if (wire.roomName(name)) state.room(name);
    save("rooms", [...state.rooms.keys()]);
    for (const r of state.rooms.values()) {
      const seq = m.read?.[r.name];
      if (isNum(seq)) r.lastRead = Math.max(r.lastRead, seq);
    }
    // Rejoin each room asking only for what was missed; its outbox goes once it is joined.
    for (const r of state.rooms.values()) {
      r.historyQueue = [];
      r.loadingOlder = false;
      conn.send({
        type: "join",
        room: r.name,
        cid: `join:${r.name}`,
        since: r.everJoined ? r.maxSeq : undefined,
      });
    }
    for (const e of outbox.where((e) => e.kind === "dm" && e.state !== "failed")) transmit(e);
  },

  // Another tab or device of this account left it.
  left: (m) => forget(m.room),

  /** This account read a room up to a seq, here or on another device. */
  read(m) {
    const room = state.rooms.get(m.room);
    if (!room || !isNum(m.seq) || m.seq < room.lastRead) return;
    room.lastRead = m.seq;
    room.unread = room.unreadSince(state.meKey);
    if (!room.unread) room.mentions = 0;
  },

  sessions: (m) => account.sessions(m),
  password_set: (m) => account.passwordSet(m),
  signed_out: () => account.signedOut(),

  joined(m) {
    const room = state.rooms.get(m.room);
    if (!room) return; // left while the join was on its way
    if (m.seq < room.maxSeq) {
      // The server lost history it had (seqs only rise): start the room over.
      room.messages = [];
      room.system = [];
      room.reachedStart = false;
    }
    const rejoin = room.everJoined;
    room.joined = room.everJoined = true;
    // A big room's list comes a page at a time: this is the first, `count` says how many in all.
    room.members.reset(wire.asNames(m.members), isNum(m.count) ? m.count : undefined, state.me);
    // What a rejoin fetches was missed while away, so it counts as unread.
    for (const msg of wire.asMessages(m.history)) if (room.add(msg)) arrived(room, msg, rejoin);
    if (!rejoin) {
      // What came since the account last read it, on any device: counted, and marked off.
      room.unread = room.unreadSince(state.meKey);
      if (room.unread) room.divide();
    }
    if (m.more === true) history(room, "after");
    if (!state.view) show("room", room.name);
    // Only now: the server may refuse a say that arrives while the join is still in flight.
    for (const e of outbox.where((e) => e.kind === "say" && e.target === room.name)) {
      if (e.state === "queued") transmit(e);
    }
  },

  message(m) {
    const msg = wire.asMessage(m), room = state.rooms.get(msg?.room ?? "");
    if (!msg || !room) return;
    if (room.add(msg)) arrived(room, msg, true);
    // A resend the server already had comes back with its old seq: still an ack.
    else if (msg.cid && nameKey(msg.from) === state.meKey) outbox.delete(msg.cid);
  },

  history(m) {
    const room = state.rooms.get(m.room),
      dir = room?.historyQueue.shift(),
      msgs = wire.asMessages(m.messages);
    if (!room) return;
    for (const msg of msgs) if (room.add(msg)) arrived(room, msg, dir === "after");
    if (dir === "after" && msgs.length >= state.historyLimit) history(room, "after");
    if (dir !== "before") return;
    room.loadingOlder = false;
    room.reachedStart ||= msgs.length < OLDER_PAGE;
  },

  join: joinOrLeave,
  leave: joinOrLeave,

  members(m) {
    const room = state.rooms.get(m.room), after = room?.members.asked.shift();
    if (!room || after === undefined) return;
    const count = isNum(m.count) ? m.count : room.members.count;
    // A page whose `after` left meanwhile is dropped; the draw asks again.
    room.members.page(after, wire.asNames(m.members), count, isStr(m.next) ? m.next : undefined);
  },

  /** A big room's joins and leaves since its last frame, in one (at most one a second). */
  presence(m) {
    const room = state.rooms.get(m.room), r = room?.members;
    if (!room?.joined || !r) return;
    for (const name of wire.asNames(m.left)) {
      r.leave(name, true);
      room.typing.delete(nameKey(name));
    }
    for (const name of wire.asNames(m.joined)) r.join(name, true);
    if (isNum(m.count)) r.count = m.count;
    // More changed than the frame names: what is on screen is fetched again (in a room not on
    // screen, when it is shown).
    if (m.more === true) r.stale();
  },

  typing(m) {
    const room = state.rooms.get(m.room);
    if (!room || !isStr(m.user) || nameKey(m.user) === state.meKey) return;
    room.typing.set(nameKey(m.user), { name: m.user, until: Date.now() + TYPING_SHOWN_MS });
    setTimeout(render, TYPING_SHOWN_MS + 50);
  },

  dm(m) {
    const dm = wire.asDirect(m), mine = dm && nameKey(dm.from) === state.meKey;
    if (!dm) return;
    const conv = state.conversation(mine ? dm.to : dm.from), key = nameKey(conv.peer);
    if (mine && dm.cid) outbox.delete(dm.cid);
    if (!conv.add(dm) || mine) return;
    if (!state.viewing("dm", key) || document.hidden) conv.unread++;
    notifier.show(`Message from ${dm.from}`, dm.text, () => show("dm", key));
  },

  error(m) {
    const cid = isStr(m.cid) ? m.cid : "", [kind, name] = cid.split(":");
    const words = ERRORS[m.code] ?? `the server refused it (${m.message}).`;
    const entry = outbox.get(cid), room = state.rooms.get(name);
    if (kind === "account") account.error(m);
    else if (entry && m.code === "rate_limited" && isNum(m.retryAfterMs)) {
      // The server is busy, not refusing this message: it goes again, with its cid, after the hint.
      entry.state = "queued";
      setTimeout(() => {
        if (outbox.get(entry.cid) === entry && entry.state === "queued") transmit(entry);
        render();
      }, Math.min(Math.max(m.retryAfterMs, 0), 60_000));
    } else if (entry) {
      outbox.fail(entry, words);
      composer.showError(`Message not sent: ${words}`);
    } else if (kind === "join") {
      if (!room?.everJoined) leave(name);
      setText(joinError, `Cannot join #${name}: ${words}`);
      openSidebar(true);
    } else if (kind === "history") {
      if (room?.historyQueue.shift() === "before") room.loadingOlder = false;
    } else if (kind === "members") {
      // The draw asks again while the list still lacks rows.
      room?.members.asked.shift();
    } else if (m.code !== "not_in_room") {
      // not_in_room without a cid answers a typing notice that raced a leave.
      composer.showError(`Something went wrong: ${words}`);
    }
  },
};

/** A member joined or left a small room: one line each. @param {wire.ServerMsg} m */
function joinOrLeave(m) {
  const room = state.rooms.get(m.room), key = isStr(m.user) ? nameKey(m.user) : state.meKey;
  if (!room || key === state.meKey) return;
  // After an outage a join may come for someone listed already: nothing changed, nothing to say.
  // A leave of someone past the names held is still news while the list is not all here.
  const r = room.members;
  if (m.type === "join" ? !r.join(m.user) : !r.leave(m.user) && r.complete) return;
  room.typing.delete(key);
  room.addSystem(`${m.user} ${m.type === "join" ? "joined" : "left"}`, m.ts || Date.now());
}

/**
 * Bookkeeping for a message seen for the first time; `fresh` ones count as unread and may notify.
 * @param {import("./state.js").Room} room @param {wire.ChatMessage} msg @param {boolean} fresh
 */
function arrived(room, msg, fresh) {
  const key = nameKey(msg.from), seen = state.viewing("room", room.name) && !document.hidden;
  room.typing.delete(key);
  if (key === state.meKey) return msg.cid && outbox.delete(msg.cid);
  if (!fresh) return;
  if (!seen) room.unread++;
  if (!mentions(msg.text, state.meKey)) return;
  if (!seen) room.mentions++;
  notifier.show(`${msg.from} in #${room.name}`, msg.text, () => show("room", room.name));
}

/**
 * Asks for the page before the oldest or after the newest message held; the cid matches an
 * error reply (rate_limited, …) to the request.
 * @param {import("./state.js").Room} room @param {"before" | "after"} dir
 */
function history(room, dir) {
  const page = dir === "before"
    ? { before: room.minSeq, limit: OLDER_PAGE }
    : { after: room.maxSeq, limit: state.historyLimit };
  if (conn.send({ type: "history", room: room.name, ...page, cid: `history:${room.name}` })) {
    room.historyQueue.push(dir);
  } else room.loadingOlder = false;
}

function loadOlder() {
  const room = state.currentRoom;
  if (!room?.joined || !room.hasOlder || room.loadingOlder) return;
  room.loadingOlder = true;
  history(room, "before");
  render();
}

/** Queues a message; it stays in the outbox until its echo arrives. @param {string} text */
function send(text) {
  const v = state.view, peer = state.currentDm?.peer;
  if (!v) return composer.showError("Join a room first.");
  transmit(outbox.add(peer ? "dm" : "say", peer ?? v.id, text));
  render();
  log.toBottom();
}

/** @param {import("./outbox.js").Entry} e */
function transmit(e) {
  const to = e.kind === "say" ? { type: "say", room: e.target } : { type: "dm", to: e.target };
  const ready = e.kind === "dm" || state.rooms.get(e.target)?.joined;
  e.state = ready && conn.send({ ...to, text: e.text, cid: e.cid }) ? "sent" : "queued";
}

/** Shows a room, or a conversation by name key. @param {"room" | "dm"} kind @param {string} id */
function show(kind, id) {
  if (!state.viewing(kind, id)) composer.reset();
  state.view = { kind, id };
  openSidebar(false);
  render();
}

function join() {
  const name = wire.roomName(joinInput.value);
  setText(joinError, name ? "" : `Cannot join: ${ERRORS.room_invalid}`);
  if (!name) return;
  joinInput.value = "";
  if (state.rooms.has(name)) return show("room", name);
  state.room(name);
  save("rooms", [...state.rooms.keys()]);
  conn.send({ type: "join", room: name, cid: `join:${name}` });
  show("room", name);
}

/** Leaves a room here and, by telling the server, on the account's other devices. @param {string} name */
function leave(name) {
  if (state.rooms.has(name)) conn.send({ type: "leave", room: name });
  forget(name);
}

/** Drops a room from this page. @param {string} name */
function forget(name) {
  if (!state.rooms.delete(name)) return;
  save("rooms", [...state.rooms.keys()]);
  for (const e of outbox.where((e) => e.target === name && e.kind === "say")) outbox.delete(e.cid);
  const next = [...state.rooms.keys()][0];
  if (state.viewing("room", name)) state.view = next ? { kind: "room", id: next } : null;
}

/** @param {boolean} open */
function openSidebar(open) {
  open &&= NARROW.matches;
  app.classList.toggle("nav-open", open);
  menu.setAttribute("aria-expanded", String(open));
  el("backdrop").hidden = !open;
  if (open) el("sidebar").querySelector("button")?.focus();
}

/** @type {Map<string, ReturnType<typeof setTimeout>>} */
const readTimers = new Map();

/** Tells the server, once the page has shown it a moment, how far `room` is read. @param {import("./state.js").Room} room */
function markRead(room) {
  if (readTimers.has(room.name)) return;
  readTimers.set(
    room.name,
    setTimeout(() => {
      readTimers.delete(room.name);
      if (
        !state.viewing("room", room.name) || document.hidden || room.maxSeq <= room.lastRead
      ) return;
      if (conn.send({ type: "read", room: room.name, seq: room.maxSeq })) {
        room.lastRead = room.maxSeq;
      }
    }, READ_DELAY_MS),
  );
}

let queued = false;

/** Redraws once per task, however many messages arrived. */
function render() {
  if (!queued) queueMicrotask(draw);
  queued = true;
}

function draw() {
  queued = false;
  const room = state.currentRoom, conv = state.currentDm, n = room?.members.count ?? 0;
  if (!room && !conv) state.view = null;
  if (!document.hidden && room) {
    room.unread = room.mentions = 0;
    if (room.joined && room.maxSeq > room.lastRead) markRead(room);
  }
  if (!document.hidden && conv) conv.unread = 0;
  const items = room?.timeline() ?? conv?.timeline() ?? [];
  const mine = outbox.where((e) =>
    room
      ? e.kind === "say" && e.target === room.name
      : e.kind === "dm" && nameKey(e.target) === state.view?.id
  );
  const view = `${state.view?.kind}:${state.view?.id}:${state.meKey}`;
  const sig = view + items.at(-1)?.key + mine.map((e) => e.cid + e.state + e.error);
  const rows = sig === pending.dataset.sig
    ? null
    : pendingRows(mine, items.findLast((i) => i.from) ?? null, state.me);
  pending.dataset.sig = sig;
  log.update(view, layoutRows(items, state.meKey), rows);

  setText(el("view-title"), room ? `# ${room.name}` : conv?.peer ?? "No room open");
  setText(
    el("view-sub"),
    conv
      ? "Direct message"
      : room?.joined
      ? `${n.toLocaleString()} online`
      : room?.everJoined
      ? "Not connected"
      : room
      ? "Joining…"
      : "",
  );
  composer.input.placeholder = `Message ${room ? `#${room.name}` : conv?.peer ?? ""}`;
  setText(
    el("log-top"),
    room?.loadingOlder
      ? "Loading older messages…"
      : room?.everJoined && !room.hasOlder
      ? `This is the start of #${room.name}.`
      : "",
  );
  const t = room?.typists() ?? [];
  setText(el("typing"), t.length ? `${t.join(", ")} ${t[1] ? "are" : "is"} typing…` : "");
  renderSidebar(state, memberList);
  setText(el("me-name"), state.me);
  notifyBtn.hidden = !notifier.supported;
  notifyBtn.setAttribute("aria-pressed", String(notifier.on));
  setText(notifyBtn, notifier.on ? "Notifications on" : "Enable notifications");
  setText(el("notify-note"), notifier.refusal);
  setTitleCount(state.totalUnread());
  menu.classList.toggle("unread", state.totalUnread() > 0);
  drawBanner();
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let countdown;

/** The connection banner: connecting, reconnecting (with a countdown), offline, or replaced. */
function drawBanner() {
  clearTimeout(countdown);
  const s = replaced ? "replaced" : status.state,
    secs = Math.ceil((status.retryAt - Date.now()) / 1000);
  const [text, button = ""] = {
    replaced: ["This tab reconnected elsewhere, so it stopped here.", "Reconnect here"],
    offline: ["You are offline; messages will go out when you are back."],
    connecting: [everOnline ? "Reconnecting…" : "Connecting…"],
    waiting: [`Connection lost. Reconnecting in ${Math.max(1, secs)} s…`, "Retry now"],
  }[s] ?? [""];
  if (s === "waiting") countdown = setTimeout(drawBanner, 1000);
  banner.hidden = !text;
  banner.dataset.tone = s === "connecting" ? "info" : "";
  setText(banner.firstElementChild ?? banner, text);
  bannerBtn.hidden = !button;
  setText(bannerBtn, button);
}

/** @param {Event} e */
const dataOf = (e) => (e.target instanceof Element && e.target.closest("button")?.dataset) || {};

menu.onclick = () => openSidebar(!app.classList.contains("nav-open"));
el("backdrop").onclick = NARROW.onchange = () => openSidebar(false);
onkeydown = (e) => {
  if (e.key !== "Escape" || !app.classList.contains("nav-open")) return;
  openSidebar(false);
  menu.focus();
};
onfocus = document.onvisibilitychange = render;

byId("join-form", HTMLFormElement).onsubmit = (e) => {
  e.preventDefault();
  join();
  render();
};

el("sidebar").onclick = (e) => {
  const d = dataOf(e);
  if (d.room) show("room", d.room);
  if (d.leave) leave(d.leave);
  if (d.dm) show("dm", nameKey(state.conversation(d.dm).peer));
  if (d.dm) composer.input.focus();
  render();
};

pending.onclick = (/** @type {Event} */ e) => {
  const d = dataOf(e), entry = outbox.get(d.retry ?? d.discard ?? "");
  if (!entry) return;
  if (d.retry) {
    outbox.retry(entry);
    transmit(entry);
  } else outbox.delete(entry.cid);
  composer.reset();
  render();
};

notifyBtn.onclick = () => notifier.toggle().then(render);
el("account-btn").onclick = () => account.open();
bannerBtn.onclick = () => replaced ? start() : conn.retryNow();

for (const r of load("rooms", ["general"]).map(wire.roomName)) if (r) state.room(r);
const first = [...state.rooms.keys()][0];
if (first) state.view = { kind: "room", id: first };
// Which fields to show depends on the server, so ask it before the first screen.
mode = await fetchMode();
await secrets.fromOtherTabs(mode);
const notice = sessionStorage.getItem("chat.notice");
sessionStorage.removeItem("chat.notice");
if (notice === null && ready(mode, secrets, identity.name)) start();
else signIn({ error: notice ?? "" });
