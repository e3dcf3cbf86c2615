/**
 * The wire format: every message a client may send, parsed once from untrusted text into a typed
 * union, and the shapes the server sends back.
 *
 * Client → server: one JSON object per text frame. Server → client: one or more JSON objects per
 * text frame, separated by "\n" (JSON.stringify never emits a raw newline, so splitting is safe).
 * docs/protocol.md is the contract for other clients; tests/protocol_doc_test.ts holds it to this file.
 */
import { skeleton } from "./skeleton.ts";

/** Longest user, room and client-id strings, in characters. */
export const MAX_NAME_CHARS = 32;
export const MAX_ROOM_CHARS = 32;
export const MAX_CID_CHARS = 64;
/** Largest page a `history` request may ask for, in messages. */
export const MAX_HISTORY_LIMIT = 200;
/** How long an accepted cid blocks a resend with the same cid from the same name in the same room, in ms. */
export const RESEND_WINDOW_MS = 10 * 60_000;
/** Default page size for `history` and the number of messages a plain `join` returns. */
export const DEFAULT_HISTORY_LIMIT = 50;
/** Most member names a `joined` reply carries; past it the client pages with `members`. */
export const MAX_JOINED_MEMBERS = 100;
/** Most names one `members` reply carries (its `limit`). */
export const MAX_MEMBERS_PAGE = 500;
/** Names a `members` reply carries when the command gives no `limit`. */
export const DEFAULT_MEMBERS_PAGE = 100;

/** Error codes the server may send in `{"type":"error"}`; none closes the connection. */
export type ErrorCode =
  | "bad_request"
  | "unknown_type"
  | "too_long"
  | "rate_limited"
  | "not_in_room"
  | "unknown_user"
  | "room_invalid"
  | "too_many_rooms"
  | "wrong_password"
  | "unavailable";

/** WebSocket close codes the server uses, by meaning. */
export const CloseCode = {
  shutdown: 1001,
  binaryFrame: 1003,
  frameTooLarge: 1009,
  tryAgain: 1013,
  badHandshake: 4000,
  unauthorized: 4001,
  slowConsumer: 4008,
  nameTaken: 4009,
  replaced: 4010,
  flooding: 4029,
} as const;

/** A message a client sends after its hello. */
export type Command =
  & (
    | { type: "join"; room: string; since?: number }
    | { type: "leave"; room: string }
    | { type: "rooms" }
    | { type: "say"; room: string; text: string }
    | { type: "history"; room: string; before?: number; after?: number; limit: number }
    | { type: "members"; room: string; after?: string; limit: number }
    | { type: "dm"; to: string; text: string }
    | { type: "typing"; room: string }
    | { type: "read"; room: string; seq: number }
    | { type: "set_password"; password: string; current?: string }
    | { type: "sessions" }
    | { type: "sign_out"; session?: string; others?: true }
  )
  & {
    /** The client's id for this frame, echoed on the reply or error; on say, the resend key. */
    cid?: string;
  };

/** The first frame a client sends. `name` may be left out only when a `token` names the user. */
export interface Hello {
  type: "hello";
  name?: string;
  resume?: string;
  password?: string;
  token?: string;
  /** The client's id for this connection's lineage (one tab), at most MAX_CONNECTION_ID_CHARS. */
  connection?: string;
  /** The account's own password (not the server's shared `password`): signs in on a new device. */
  accountPassword?: string;
  /** A label for this device's session, e.g. "Firefox on Linux", at most MAX_DEVICE_LABEL_CHARS. */
  device?: string;
}

/** A room message as stored and as sent (`type` is added on the wire). */
export interface ChatMessage {
  room: string;
  seq: number;
  from: string;
  text: string;
  ts: number;
  cid?: string;
}

/** A failed parse: the error code to send and a sentence saying why. */
export interface ParseError {
  ok: false;
  code: ErrorCode;
  message: string;
  cid?: string;
}

/** The result of parsing one frame. */
export type Parsed<T> = { ok: true; value: T } | ParseError;

/** Limits that parsing enforces. */
export interface ParseLimits {
  /** Longest `text`, in characters (Unicode code points). @default 4000 */
  maxTextChars: number;
}

/**
 * Letters, digits, `_ - .`, and combining marks after the first character: Devanagari, Thai and
 * many other scripts write names with vowel signs and viramas, and a decomposed "Zoë" is Zoe plus
 * a mark (NFKC in the name key makes it one name with the composed one).
 */
const NAME_PATTERN = /^[\p{L}\p{N}_.\-][\p{L}\p{M}\p{N}_.\-]*$/u;
/** Most combining marks in a row a name may hold: real scripts stack two or three, "Zalgo" dozens. */
export const MAX_MARKS_IN_A_ROW = 3;
const MARK_STACK = new RegExp(`\\p{M}{${MAX_MARKS_IN_A_ROW + 1},}`, "u");
const ROOM_PATTERN = /^[a-z0-9_-]+$/;
/**
 * Characters that show as nothing or as blank space, so a name holding one looks like another name
 * or like none: Unicode's default-ignorable code points (zero-width characters, bidi controls,
 * variation selectors, tags, and the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0, which are
 * letters), format characters and white space. Two more are not marked ignorable but are blank:
 * U+2800 BRAILLE PATTERN BLANK (a braille cell with no dots) and U+1D159 MUSICAL SYMBOL NULL
 * NOTEHEAD (drawn as nothing). Most of these are not letters or digits either; they are looked for
 * first so the refusal says what is wrong. ASCII (a space, a tab) is left to NAME_PATTERN, whose
 * "only letters, digits" says it better.
 */
const INVISIBLE =
  /[[\p{Default_Ignorable_Code_Point}\p{Cf}\p{White_Space}\u2800\u{1D159}]--[\0-\x7f]]/v;
/** Most rounds of folding and skeleton a key may take; any one code point settles in three. */
const MAX_KEY_ROUNDS = 4;

/**
 * Names whose key is remembered, so the store and the resend guard, which key every message's
 * sender, skip the normalisations (a key costs ~6 µs, a remembered one ~0.1 µs). Past the bound
 * the cache starts over. It holds ~100 KB for ordinary names and at most ~1.2 MB: NFKC may make
 * a name 18 times longer (U+FDFA is one letter, 18 after NFKC), so a key has at most 576.
 */
const NAME_KEY_CACHE_ENTRIES = 1024;
const keyCache = new Map<string, string>();

/**
 * Checks a user name: 1-32 Unicode letters, digits, `_`, `-` or `.`, none of them invisible;
 * returns why not, or null.
 */
export function nameProblem(name: string): string | null {
  const chars = codePointLength(name);
  if (chars < 1 || chars > MAX_NAME_CHARS) return `name must be 1-${MAX_NAME_CHARS} characters`;
  const invisible = INVISIBLE.exec(name);
  if (invisible !== null) {
    const hex = invisible[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    return `name may not hold invisible characters (U+${hex})`;
  }
  if (!NAME_PATTERN.test(name)) return "name may hold only letters, digits, _ - and .";
  if (MARK_STACK.test(name)) {
    return `name may not stack more than ${MAX_MARKS_IN_A_ROW} combining marks`;
  }
  return null;
}

/**
 * The key two names collide on: case-folded (NFKC, then lower case) and then reduced to its TR39
 * confusable skeleton, so `Alice`, `ａｌｉｃｅ` and `аlice` (Cyrillic а) are one name.
 *
 * The skeleton is taken of the lower-case name, so names that were one case-insensitively stay
 * one. A prototype may be a capital (`0` maps to `O`) or a compatibility form, so the folding and
 * the skeleton repeat until nothing changes: the key of a key is itself.
 */
export function nameKey(name: string): string {
  const known = keyCache.get(name);
  if (known !== undefined) return known;
  let key = name;
  for (let round = 0; round < MAX_KEY_ROUNDS; round++) {
    const next = skeleton(nameFold(key)).toLowerCase();
    if (next === key) break;
    key = next;
  }
  if (keyCache.size >= NAME_KEY_CACHE_ENTRIES) keyCache.clear();
  keyCache.set(name, key);
  return key;
}

/**
 * A name compared case-insensitively, lookalikes apart (NFKC, then lower case): names with the
 * same fold are one user's name written another way (`Alice`, `ａｌｉｃｅ`), not a mimic.
 */
export function nameFold(name: string): string {
  return name.normalize("NFKC").toLowerCase();
}

/** Lower-cases and checks a room name (1-32 of a-z 0-9 _ -); returns the room or null. */
export function normalizeRoom(room: string): string | null {
  if (room.length < 1 || room.length > MAX_ROOM_CHARS) return null;
  const lower = room.toLowerCase();
  return ROOM_PATTERN.test(lower) ? lower : null;
}

/** Counts Unicode code points, so an emoji is one character, as a person counts. */
export function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

type Json = Record<string, unknown>;

function fail(code: ErrorCode, message: string, cid?: string): ParseError {
  return cid === undefined ? { ok: false, code, message } : { ok: false, code, message, cid };
}

function parseObject(text: string): Json | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  return value as Json; // checked just above: a plain JSON object
}

function optionalString(obj: Json, key: string): string | undefined | null {
  const v = obj[key];
  if (v === undefined) return undefined;
  return typeof v === "string" ? v : null;
}

function optionalSeq(obj: Json, key: string): number | undefined | null {
  const v = obj[key];
  if (v === undefined) return undefined;
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

/** Most characters of a hello's `connection` id (a random id per tab is 22-36). */
export const MAX_CONNECTION_ID_CHARS = 64;
/** Most characters of a hello's `device` label (store/accounts.ts keeps the same bound). */
export const MAX_DEVICE_LABEL_CHARS = 64;
/**
 * Most UTF-16 units of a password field (`accountPassword`, `set_password`'s fields); a password
 * is at most 1024 bytes (auth/password.ts), and the exact rule is checked there, before hashing.
 */
export const MAX_SECRET_CHARS = 1024;
/** Most characters of a session id in `sign_out` (the store's ids are 36-character UUIDs). */
const MAX_SESSION_ID_CHARS = 64;

/** Why a device label cannot be used, or null: 1-64 characters, no control characters. */
export function deviceProblem(device: string): string | null {
  const chars = [...device].length;
  return chars < 1 || chars > MAX_DEVICE_LABEL_CHARS || /\p{Cc}/u.test(device) ||
      !device.isWellFormed()
    ? `device must be 1-${MAX_DEVICE_LABEL_CHARS} characters, none of them control characters`
    : null;
}

/** Parses the first frame of a connection; anything but a well-formed hello is an error. */
export function parseHello(text: string): Parsed<Hello> {
  const obj = parseObject(text);
  if (obj === null) return fail("bad_request", "Cannot parse hello: not a JSON object");
  if (obj.type !== "hello") {
    return fail("bad_request", "Cannot start: the first frame must be hello");
  }
  const hello: Hello = { type: "hello" };
  const fields = ["name", "resume", "password", "token", "connection", "accountPassword", "device"];
  for (const key of fields as (keyof Omit<Hello, "type">)[]) {
    const v = optionalString(obj, key);
    if (v === null) return fail("bad_request", `Cannot start: ${key} must be a string`);
    if (v !== undefined) hello[key] = v;
  }
  if (hello.connection !== undefined && hello.connection.length > MAX_CONNECTION_ID_CHARS) {
    return fail(
      "bad_request",
      `Cannot start: connection must be at most ${MAX_CONNECTION_ID_CHARS} characters`,
    );
  }
  if (hello.device !== undefined && deviceProblem(hello.device) !== null) {
    return fail("bad_request", `Cannot start: ${deviceProblem(hello.device)}`);
  }
  if (hello.accountPassword !== undefined && hello.accountPassword.length > MAX_SECRET_CHARS) {
    return fail(
      "bad_request",
      `Cannot start: accountPassword is over ${MAX_SECRET_CHARS} characters`,
    );
  }
  if (hello.name === undefined && hello.token === undefined) {
    return fail("bad_request", "Cannot start: hello needs a name");
  }
  const problem = hello.name === undefined ? null : nameProblem(hello.name);
  if (problem !== null) return fail("bad_request", `Cannot start: ${problem}`);
  return { ok: true, value: hello };
}

/** Parses one frame sent after the hello into a command or an error to send back. */
export function parseCommand(text: string, limits: ParseLimits): Parsed<Command> {
  const obj = parseObject(text);
  if (obj === null) return fail("bad_request", "Cannot parse frame: not a JSON object");
  const rawCid = optionalString(obj, "cid");
  // Echo a usable cid on every error so the sender can match it to what it sent.
  const cid = typeof rawCid === "string" && rawCid.length <= MAX_CID_CHARS ? rawCid : undefined;
  if (rawCid === null) return fail("bad_request", "Cannot parse frame: cid must be a string");
  if (rawCid !== undefined && cid === undefined) {
    return fail(
      "bad_request",
      `Cannot parse frame: cid must be at most ${MAX_CID_CHARS} characters`,
    );
  }
  // A lone surrogate would not survive storage as text, and the resend check after a restart
  // compares stored cids; cleaning it instead could make two cids one.
  if (cid !== undefined && !cid.isWellFormed()) {
    return fail("bad_request", "Cannot parse frame: cid has a lone surrogate", cid);
  }
  const type = obj.type;
  if (typeof type !== "string") {
    return fail("bad_request", "Cannot parse frame: type is missing", cid);
  }

  const room = (): string | ParseError => {
    if (typeof obj.room !== "string") {
      return fail("bad_request", `Cannot ${type}: room is missing`, cid);
    }
    return normalizeRoom(obj.room) ??
      fail("room_invalid", `Cannot ${type}: room must be 1-${MAX_ROOM_CHARS} of a-z 0-9 _ -`, cid);
  };
  const messageText = (): string | ParseError => {
    if (typeof obj.text !== "string") {
      return fail("bad_request", `Cannot ${type}: text is missing`, cid);
    }
    // String length bounds the code point count from above, so most texts skip the count.
    if (obj.text.length === 0) return fail("bad_request", `Cannot ${type}: text is empty`, cid);
    if (obj.text.length > limits.maxTextChars && codePointLength(obj.text) > limits.maxTextChars) {
      return fail(
        "too_long",
        `Cannot ${type}: text is over ${limits.maxTextChars} characters`,
        cid,
      );
    }
    // Half an emoji (a lone surrogate) becomes U+FFFD here, once, so the echo, the cache and the
    // store all hold the same text.
    return obj.text.isWellFormed() ? obj.text : obj.text.toWellFormed();
  };

  const parsed = ((): Parsed<Command> => {
    switch (type) {
      case "join": {
        const r = room();
        if (typeof r !== "string") return r;
        const since = optionalSeq(obj, "since");
        if (since === null) {
          return fail("bad_request", "Cannot join: since must be a seq (integer ≥ 0)", cid);
        }
        return {
          ok: true,
          value: since === undefined ? { type, room: r } : { type, room: r, since },
        };
      }
      case "leave":
      case "typing": {
        const r = room();
        if (typeof r !== "string") return r;
        return { ok: true, value: { type, room: r } };
      }
      case "rooms":
        return { ok: true, value: { type } };
      case "say": {
        const r = room();
        if (typeof r !== "string") return r;
        const t = messageText();
        if (typeof t !== "string") return t;
        return { ok: true, value: { type, room: r, text: t } };
      }
      case "history": {
        const r = room();
        if (typeof r !== "string") return r;
        const before = optionalSeq(obj, "before");
        const after = optionalSeq(obj, "after");
        if (before === null || after === null) {
          return fail("bad_request", "Cannot read history: before and after must be seqs", cid);
        }
        if (before !== undefined && after !== undefined) {
          return fail("bad_request", "Cannot read history: give before or after, not both", cid);
        }
        const limit = pageLimit(obj.limit, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT);
        if (limit === null) {
          return fail(
            "bad_request",
            `Cannot read history: limit must be 1-${MAX_HISTORY_LIMIT}`,
            cid,
          );
        }
        const value: Command = { type, room: r, limit };
        if (before !== undefined) value.before = before;
        if (after !== undefined) value.after = after;
        return { ok: true, value };
      }
      case "members": {
        const r = room();
        if (typeof r !== "string") return r;
        const after = obj.after;
        if (after !== undefined && (typeof after !== "string" || nameProblem(after) !== null)) {
          return fail("bad_request", "Cannot list members: after must be a member's name", cid);
        }
        const limit = pageLimit(obj.limit, DEFAULT_MEMBERS_PAGE, MAX_MEMBERS_PAGE);
        if (limit === null) {
          return fail(
            "bad_request",
            `Cannot list members: limit must be 1-${MAX_MEMBERS_PAGE}`,
            cid,
          );
        }
        const value: Command = { type, room: r, limit };
        if (after !== undefined) value.after = after;
        return { ok: true, value };
      }
      case "dm": {
        if (typeof obj.to !== "string") return fail("bad_request", "Cannot dm: to is missing", cid);
        if (nameProblem(obj.to) !== null) {
          return fail("unknown_user", "Cannot dm: no such user is online", cid);
        }
        const t = messageText();
        if (typeof t !== "string") return t;
        return { ok: true, value: { type, to: obj.to, text: t } };
      }
      case "read": {
        const r = room();
        if (typeof r !== "string") return r;
        const seq = optionalSeq(obj, "seq");
        if (seq === null || seq === undefined) {
          return fail("bad_request", "Cannot mark read: seq must be a seq (integer ≥ 0)", cid);
        }
        return { ok: true, value: { type, room: r, seq } };
      }
      case "set_password": {
        const password = obj.password;
        const current = obj.current;
        if (typeof password !== "string") {
          return fail("bad_request", "Cannot set password: password is missing", cid);
        }
        if (current !== undefined && typeof current !== "string") {
          return fail("bad_request", "Cannot set password: current must be a string", cid);
        }
        if (password.length > MAX_SECRET_CHARS || (current?.length ?? 0) > MAX_SECRET_CHARS) {
          return fail("too_long", `Cannot set password: over ${MAX_SECRET_CHARS} characters`, cid);
        }
        return {
          ok: true,
          value: current === undefined ? { type, password } : { type, password, current },
        };
      }
      case "sessions":
        return { ok: true, value: { type } };
      case "sign_out": {
        const { session, others } = obj;
        if (session !== undefined && others !== undefined) {
          return fail("bad_request", "Cannot sign out: give session or others, not both", cid);
        }
        if (others !== undefined && others !== true) {
          return fail("bad_request", "Cannot sign out: others must be true", cid);
        }
        if (
          session !== undefined &&
          (typeof session !== "string" || session.length === 0 ||
            session.length > MAX_SESSION_ID_CHARS)
        ) {
          return fail("bad_request", "Cannot sign out: session must be a session id", cid);
        }
        if (session !== undefined) return { ok: true, value: { type, session: session as string } };
        return { ok: true, value: others === true ? { type, others } : { type } };
      }
      case "hello":
        return fail("bad_request", "Cannot hello: this connection already said hello", cid);
      default:
        return fail(
          "unknown_type",
          `Cannot handle frame: unknown type ${JSON.stringify(type.slice(0, 32))}`,
          cid,
        );
    }
  })();
  if (parsed.ok && cid !== undefined) parsed.value.cid = cid;
  return parsed;
}

/** A page size as given (`fallback` when left out): a whole number from 1 to `max`, else null. */
function pageLimit(given: unknown, fallback: number, max: number): number | null {
  const limit = given ?? fallback;
  return typeof limit === "number" && Number.isSafeInteger(limit) && limit >= 1 && limit <= max
    ? limit
    : null;
}

/** Serialises a stored message for the wire, once, so every recipient gets the same string. */
export function messageLine(m: ChatMessage): string {
  return JSON.stringify(
    m.cid === undefined
      ? { type: "message", room: m.room, seq: m.seq, from: m.from, text: m.text, ts: m.ts }
      : {
        type: "message",
        room: m.room,
        seq: m.seq,
        from: m.from,
        text: m.text,
        ts: m.ts,
        cid: m.cid,
      },
  );
}

/** Serialises an error reply. */
export function errorLine(
  code: ErrorCode,
  message: string,
  cid?: string,
  retryAfterMs?: number,
): string {
  const reply: Record<string, unknown> = { type: "error", code, message };
  if (cid !== undefined) reply.cid = cid;
  if (retryAfterMs !== undefined) reply.retryAfterMs = retryAfterMs;
  return JSON.stringify(reply);
}

/** What a welcome says. */
export interface Welcome {
  /** The name granted, in its account's spelling. */
  name: string;
  /** The session token to present next time. */
  resume: string;
  limits: Record<string, unknown>;
  version: string;
  /** The rooms the account joined (on any device), by name. */
  rooms: string[];
  /** Whether the account has a password: without one, only its token signs in as it. */
  hasPassword: boolean;
  /** How far the account has read each of its rooms (rooms read to no seq are left out). */
  read: Record<string, number>;
}

/** One session in a `sessions` reply: never its token. */
export interface SessionEntry {
  id: string;
  device: string;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch. */
  lastSeenAt: number;
  /** True for the session of the connection that asked. */
  current: boolean;
}

/** Serialises the reply to `sessions`: the account's sessions, most recently seen first. */
export function sessionsLine(sessions: SessionEntry[], cid?: string): string {
  return JSON.stringify(
    cid === undefined ? { type: "sessions", sessions } : {
      type: "sessions",
      sessions,
      cid,
    },
  );
}

/** Serialises the reply to `set_password`: how many other sessions it signed out. */
export function passwordSetLine(signedOut: number, cid?: string): string {
  return JSON.stringify(
    cid === undefined
      ? { type: "password_set", signedOut }
      : { type: "password_set", signedOut, cid },
  );
}

/** Serialises the reply to `sign_out`: the ids of the sessions ended. */
export function signedOutLine(sessions: string[], cid?: string): string {
  return JSON.stringify(
    cid === undefined ? { type: "signed_out", sessions } : { type: "signed_out", sessions, cid },
  );
}

/** Serialises a read marker: the account has read `room` up to `seq` (on some connection). */
export function readLine(room: string, seq: number): string {
  return JSON.stringify({ type: "read", room, seq });
}

/** Serialises the reply to a hello. */
export function welcomeLine(w: Welcome): string {
  const { name, resume, limits, version, rooms, hasPassword, read } = w;
  return JSON.stringify({
    type: "welcome",
    name,
    resume,
    limits,
    version,
    rooms,
    hasPassword,
    read,
  });
}

/**
 * Serialises the reply to a join: the first page of `members` (at most MAX_JOINED_MEMBERS) and
 * how many there are in all; `history` holds serialised message lines, oldest first.
 */
export function joinedLine(
  room: string,
  members: { names: string[]; count: number },
  history: string[],
  seq: number,
  flags: { more: boolean; truncated: boolean },
): string {
  const tail = `${flags.more ? ',"more":true' : ""}${flags.truncated ? ',"truncated":true' : ""}`;
  return `{"type":"joined","room":${JSON.stringify(room)},"members":${
    JSON.stringify(members.names)
  },"count":${members.count},"history":[${history.join(",")}],"seq":${seq}${tail}}`;
}

/** Serialises a page of a room's members; `next`, when set, is the `after` of the next page. */
export function membersLine(
  room: string,
  names: string[],
  count: number,
  next: string | undefined,
  cid: string | undefined,
): string {
  const reply: Record<string, unknown> = { type: "members", room, members: names, count };
  if (next !== undefined) reply.next = next;
  if (cid !== undefined) reply.cid = cid;
  return JSON.stringify(reply);
}

/**
 * Serialises a large room's batched presence: the net arrivals and departures since its last
 * presence frame and the member count now; `more` when more changed than the frame names.
 */
export function presenceBatchLine(
  room: string,
  changes: { joined: string[]; left: string[]; more: boolean },
  count: number,
  ts: number,
): string {
  const reply: Record<string, unknown> = {
    type: "presence",
    room,
    joined: changes.joined,
    left: changes.left,
    count,
    ts,
  };
  if (changes.more) reply.more = true;
  return JSON.stringify(reply);
}

/** Serialises the reply to a leave. */
export function leftLine(room: string): string {
  return `{"type":"left","room":${JSON.stringify(room)}}`;
}

/** Serialises the reply to a history read; `messages` holds serialised message lines. */
export function historyLine(room: string, messages: string[], truncated: boolean): string {
  return `{"type":"history","room":${JSON.stringify(room)},"messages":[${messages.join(",")}]${
    truncated ? ',"truncated":true' : ""
  }}`;
}

/** Serialises the room list, sorted by the caller. */
export function roomsLine(rooms: { room: string; members: number }[]): string {
  return JSON.stringify({ type: "rooms", rooms });
}

/** Serialises a member's arrival or departure, as every member sees it. */
export function presenceLine(
  type: "join" | "leave",
  room: string,
  user: string,
  ts: number,
): string {
  return `{"type":"${type}","room":${JSON.stringify(room)},"user":${
    JSON.stringify(user)
  },"ts":${ts}}`;
}

/** Serialises a typing indicator. */
export function typingLine(room: string, user: string): string {
  return `{"type":"typing","room":${JSON.stringify(room)},"user":${JSON.stringify(user)}}`;
}

/** Serialises a direct message, as both its sender and its recipient see it. */
export function dmLine(
  from: string,
  to: string,
  text: string,
  ts: number,
  cid: string | undefined,
): string {
  return JSON.stringify(
    cid === undefined
      ? { type: "dm", from, to, text, ts }
      : { type: "dm", from, to, text, ts, cid },
  );
}
