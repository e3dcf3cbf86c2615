/**
 * The account store interface: accounts, their sessions, the rooms they joined with a read marker
 * each, invites, and the one-time admin bootstrap token. SqliteAccountStore
 * (store/sqlite_accounts.ts, on the message store's own file and connection) and
 * RedisAccountStore (redis/redis_accounts.ts) implement it; tests/account_store_spec.ts holds both
 * to one spec.
 *
 * Secrets: session, invite and bootstrap tokens are 256 random bits, returned once by the call
 * that makes them and stored only as their SHA-256 ({@linkcode hashToken}). A fast hash is right
 * for these, unlike for passwords: a token has 256 bits of entropy, so nobody can guess one and
 * hash it, and a stolen table of hashes gives nothing to try offline; the hash only keeps a
 * database reader from using the tokens themselves. Password hashes (auth/password.ts) are stored
 * as given. No method logs anything, and no listing returns a hash.
 *
 * Every change that must hold across instances (a name taken once, a session's token rotated, an
 * invite's uses counted, a read marker that only moves forward) is one transaction in SQLite and
 * one Lua script in Redis. Methods answer synchronously (SQLite) or with a promise (Redis), as the
 * message store's do.
 *
 * Wiring. hub/sessions.ts signs hellos in through this store: a free name gets `createAccount`
 * and `createSession` (the welcome carries the token); a hello with a session token gets
 * `findSession`, then `rotateSession` when the token was the current one, and `touchSession` at
 * the hello, the disconnect and at most every {@linkcode TOUCH_INTERVAL_MS} while connected; its
 * sweep calls `releaseInactive(now, --account-ttl)`. hub/join.ts records `joinRoom`, the hub's
 * leave `leaveRoom`, and the welcome lists `listRooms`. A hello with the account's password signs
 * in through `accountByName` and `createSession` (hub/sessions.ts); hub/account_commands.ts calls
 * `setPassword`, `revokeAllSessions`, `revokeSession` and `listSessions`. Not wired yet (next steps):
 * - a `read` command calls `markRead` and tells the account's other connections the value it
 *   returns. Stored DMs (hub/dm.ts) can be rooms of their own here, one per pair of accounts.
 * - admin commands: `setDisabled` (then close the account's connections), `listAccounts`,
 *   `createInvite`, `revokeInvite`, `listInvites`; an invite hello calls `consumeInvite` before
 *   `createAccount`.
 * - start: `createBootstrapToken` prints the link when it returns a token (the one secret that is
 *   meant to be printed); a hello carrying it calls `useBootstrapToken` for the account it signed in.
 * - the sweep: `pruneInvites(now)` beside `releaseInactive`.
 * - with `--redis`, the append script's fence (redis/redis_store.ts) can check that a message's
 *   session still exists (`chat:session:{id}`, redis/redis_accounts.ts) in the same atomic step,
 *   so a revoked session or a disabled account cannot post from a frozen instance.
 */
import { createHash } from "node:crypto";
import type { MaybePromise } from "./store.ts";
import { MAX_DEVICE_LABEL_CHARS } from "../protocol/protocol.ts";

/** What an account may do. */
export type Role = "member" | "admin";

/** One account, as the store holds it. */
export interface Account {
  /** Opaque and permanent (a random UUID); names can be released and taken again, ids never. */
  id: string;
  /** The name as its owner wrote it. */
  name: string;
  /** `nameKey(name)`: unique among accounts. */
  key: string;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch; only moves forward. */
  lastActiveAt: number;
  /** The stored string from auth/password.ts, or null when the account has no password. */
  passwordHash: string | null;
  role: Role;
  disabled: boolean;
}

/** An account as listings show it: everything but the password hash. */
export type AccountInfo = Omit<Account, "passwordHash"> & { hasPassword: boolean };

/** A new account. */
export interface NewAccount {
  name: string;
  /** @default null */
  passwordHash?: string | null;
  /** @default "member" */
  role?: Role;
  now: number;
}

/** The outcome of {@linkcode AccountStore.createAccount}. */
export type CreateAccountResult =
  | { ok: true; account: Account }
  | { ok: false; reason: "name_taken" };

/** A session as its owner's session list shows it: never its token or the token's hash. */
export interface SessionInfo {
  /** Opaque (a random UUID), for revoking one session. */
  id: string;
  accountId: string;
  /** A label for the device, e.g. "Firefox on Linux"; at most {@linkcode MAX_DEVICE_CHARS}. */
  device: string;
  createdAt: number;
  lastSeenAt: number;
}

/** The outcome of {@linkcode AccountStore.createSession}. */
export type CreateSessionResult =
  | {
    ok: true;
    /** The token, returned this once; only its hash is stored. */
    token: string;
    session: SessionInfo;
    /** The least recently seen session, revoked to stay within the limit; close its sockets. */
    evicted: string | null;
  }
  | { ok: false; reason: "no_account" | "disabled" };

/** A live session found by its token, with its account. */
export interface FoundSession {
  session: SessionInfo;
  account: Account;
  /**
   * True when the token was the session's previous one, still accepted because the token that
   * replaced it has not been used yet (its welcome may have been lost).
   */
  previous: boolean;
}

/** A room an account joined, and how far it has read. */
export interface JoinedRoom {
  room: string;
  /** The highest seq the account has read; 0 when none. */
  lastRead: number;
}

/** The outcome of {@linkcode AccountStore.joinRoom}. */
export type JoinRoomResult =
  | { ok: true; added: boolean }
  | { ok: false; reason: "too_many_rooms" | "no_account" };

/** An invite as admins see it: never its token or the token's hash. */
export interface InviteInfo {
  id: string;
  /** The account id of the admin who made it. */
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  maxUses: number;
  uses: number;
  /** ms since the epoch, or null while not revoked. */
  revokedAt: number | null;
}

/** A new invite. */
export interface NewInvite {
  createdBy: string;
  /** ms since the epoch; must be after `now`. */
  expiresAt: number;
  /** 1 to {@linkcode MAX_INVITE_USES}. */
  maxUses: number;
  now: number;
}

/** The outcome of {@linkcode AccountStore.createInvite}. */
export type CreateInviteResult =
  | { ok: true; token: string; invite: InviteInfo }
  | { ok: false; reason: "too_many_invites" };

/** Why an invite was refused; each is its own error to the person holding the link. */
export type InviteRefusal = "unknown" | "expired" | "used_up" | "revoked";

/** The outcome of {@linkcode AccountStore.consumeInvite}. */
export type ConsumeInviteResult =
  | { ok: true; invite: InviteInfo }
  | { ok: false; reason: InviteRefusal };

/**
 * Most sessions one account holds; a new one past it revokes the least recently seen. A person's
 * phone, laptop and a few browsers are well under it (tabs share one session); the bound keeps a
 * script that signs in again and again from growing the table, and from locking its owner out.
 */
export const MAX_SESSIONS_PER_ACCOUNT = 20;
/** Most characters of a session's device label: the hello's own bound. */
export const MAX_DEVICE_CHARS = MAX_DEVICE_LABEL_CHARS;
/**
 * Most live (unexpired, unrevoked, not used up) invites one admin may hold: far more open links
 * than a team onboards at once (each may allow up to MAX_INVITE_USES people), few enough that a
 * stolen admin session cannot mint an unbounded number.
 */
export const MAX_LIVE_INVITES_PER_ADMIN = 50;
/** Most uses one invite may allow. */
export const MAX_INVITE_USES = 1000;
/** How long a dead invite (expired, used up, revoked) is kept, so its link says why, in ms. */
export const DEAD_INVITE_KEEP_MS = 7 * 24 * 60 * 60_000;
/** Most accounts one `releaseInactive` call releases, so one call stays short. */
export const MAX_RELEASED_PER_CALL = 500;
/** Most invites one `pruneInvites` call deletes. */
export const MAX_PRUNED_INVITES_PER_CALL = 500;
/** Most accounts one `listAccounts` call returns. */
export const MAX_LISTED_ACCOUNTS = 500;
/** How often a connected session needs its last-seen time written, at most, in ms. */
export const TOUCH_INTERVAL_MS = 5 * 60_000;
/** The default `--account-ttl`: how long an account without a password outlives its last use. */
export const DEFAULT_ACCOUNT_TTL_MS = 30 * 24 * 60 * 60_000;

/** Accounts, sessions, joined rooms with read markers, invites and the bootstrap token. */
export interface AccountStore {
  // Accounts.
  /** Creates an account, or says the name's key is taken. */
  createAccount(account: NewAccount): MaybePromise<CreateAccountResult>;
  accountById(id: string): MaybePromise<Account | null>;
  /** The account whose name has the same `nameKey` as `name`, or null. */
  accountByName(name: string): MaybePromise<Account | null>;
  /** Accounts by name key, after `afterKey` when given, at most `limit` (≤ MAX_LISTED_ACCOUNTS). */
  listAccounts(limit: number, afterKey?: string): MaybePromise<AccountInfo[]>;
  /** Sets or clears the password hash; false when there is no such account. */
  setPassword(id: string, passwordHash: string | null): MaybePromise<boolean>;
  setRole(id: string, role: Role): MaybePromise<boolean>;
  /** Disabling also revokes every session of the account; false when there is no such account. */
  setDisabled(id: string, disabled: boolean): MaybePromise<boolean>;
  /**
   * Releases (deletes, with their sessions and rooms) up to MAX_RELEASED_PER_CALL accounts with no
   * password, not admins, whose last activity is more than `ttlMs` before `now`; returns them.
   * Admins are kept: releasing the only admin's name would give the server away.
   */
  releaseInactive(now: number, ttlMs: number): MaybePromise<Account[]>;

  // Sessions.
  /** Makes a session; at the limit the least recently seen one is revoked (`evicted`). */
  createSession(accountId: string, device: string, now: number): MaybePromise<CreateSessionResult>;
  /**
   * The live session `token` opens, or null. Its current token clears the previous one (the new
   * token is in use, so the old one stops working); a disabled account's session is not live.
   */
  findSession(token: string): MaybePromise<FoundSession | null>;
  /**
   * Gives the session `token` opens a new token, returned once, or null when `token` opens none.
   * The presented token stays accepted until the new one is first used.
   */
  rotateSession(token: string): MaybePromise<{ token: string; session: SessionInfo } | null>;
  /** Moves the session's last-seen time, and its account's last activity, forward to `now`. */
  touchSession(sessionId: string, now: number): MaybePromise<void>;
  /** Revokes one session of the account; false when it has no such session. */
  revokeSession(accountId: string, sessionId: string): MaybePromise<boolean>;
  /** Revokes the account's sessions except `keep`; returns the revoked ids. */
  revokeAllSessions(accountId: string, keep?: string): MaybePromise<string[]>;
  /** The account's sessions, most recently seen first. */
  listSessions(accountId: string): MaybePromise<SessionInfo[]>;

  // Rooms and read markers.
  /** Adds `room` to the account's rooms unless it holds `maxRooms` already. */
  joinRoom(accountId: string, room: string, maxRooms: number): MaybePromise<JoinRoomResult>;
  /** Removes the room and its read marker; false when the account had not joined it. */
  leaveRoom(accountId: string, room: string): MaybePromise<boolean>;
  /** The account's rooms, by name. */
  listRooms(accountId: string): MaybePromise<JoinedRoom[]>;
  /**
   * Moves the read marker forward to `seq` (never back) and returns the marker now, or null when
   * the account has not joined the room.
   */
  markRead(accountId: string, room: string, seq: number): MaybePromise<number | null>;

  // Invites.
  /**
   * Makes an invite unless its admin holds MAX_LIVE_INVITES_PER_ADMIN live ones. The caller checks
   * that `createdBy` is an admin; throws a RangeError for an expiry or uses out of bounds.
   */
  createInvite(invite: NewInvite): MaybePromise<CreateInviteResult>;
  /** Counts one use of the invite `token` opens, atomically, or says why not. */
  consumeInvite(token: string, now: number): MaybePromise<ConsumeInviteResult>;
  /** Revokes an invite; false when there is no such invite or it was revoked already. */
  revokeInvite(id: string, now: number): MaybePromise<boolean>;
  /** Every invite kept, newest first. */
  listInvites(): MaybePromise<InviteInfo[]>;
  /** Deletes invites dead for longer than DEAD_INVITE_KEEP_MS; returns how many. */
  pruneInvites(now: number): MaybePromise<number>;

  // The admin bootstrap.
  /**
   * A new one-time admin token when there is no account yet, or when an earlier bootstrap token
   * was never used (it is replaced: only the newest link works); otherwise null.
   */
  createBootstrapToken(now: number): MaybePromise<string | null>;
  /** Makes the account an admin and spends the token; false when the token is not the live one. */
  useBootstrapToken(token: string, accountId: string): MaybePromise<boolean>;

  /** Releases the store; safe to call twice. */
  close(): MaybePromise<void>;
}

/** 256 random bits, base64url: a session, invite or bootstrap token. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** What may be shown of an account: everything but its password hash. */
export function accountInfo(a: Account): AccountInfo {
  const { passwordHash, ...rest } = a;
  return { ...rest, hasPassword: passwordHash !== null };
}

/** SHA-256 of a token, hex: what the store keeps instead of the token (see the module header). */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * Throws "Cannot <action>: …" when a device label is empty, over MAX_DEVICE_CHARS, or holds a
 * control character (U+0000 among them, which `node:sqlite` would cut the label at).
 */
export function checkDevice(device: string, action: string): void {
  const chars = [...device].length;
  if (chars < 1 || chars > MAX_DEVICE_CHARS || /\p{Cc}/u.test(device)) {
    throw new RangeError(
      `Cannot ${action}: a device label must be 1-${MAX_DEVICE_CHARS} characters, none of them control characters`,
    );
  }
}

/** Throws "Cannot create invite: …" when its expiry or uses are out of bounds. */
export function checkInvite(invite: NewInvite): void {
  if (!(invite.expiresAt > invite.now)) {
    throw new RangeError("Cannot create invite: it must expire after now");
  }
  if (
    !Number.isSafeInteger(invite.maxUses) || invite.maxUses < 1 || invite.maxUses > MAX_INVITE_USES
  ) {
    throw new RangeError(`Cannot create invite: uses must be 1-${MAX_INVITE_USES}`);
  }
}

/** Why an invite in this state is refused at `now`, or null when it may be used. */
export function inviteRefusal(invite: InviteInfo, now: number): InviteRefusal | null {
  if (invite.revokedAt !== null) return "revoked";
  if (invite.uses >= invite.maxUses) return "used_up";
  if (now >= invite.expiresAt) return "expired";
  return null;
}
