/**
 * The commands about one's own account: `read` (a read marker per room), `set_password`,
 * `sessions` (the account's sessions, for a sessions page) and `sign_out` (this session, one other,
 * or all others).
 *
 * - `read` moves the account's marker for a room it is in forward (never back) to a seq no higher
 *   than the room's latest here, so a client cannot mark messages read before they exist; every
 *   connection of the account, the sender's included, is told the marker now (`read`), so another
 *   tab or device drops its unread count at once. The welcome carries each room's marker.
 *
 * - `set_password` sets the account's first password, or changes it when given the current one.
 *   A wrong current password is `wrong_password` and counts toward the same sign-in limiter as a
 *   wrong password at the hello (per name key and per address), so the command cannot be used to
 *   guess faster than signing in; when the limiter says no, it is `rate_limited` with a retry
 *   hint, before any hash is spent. Once the new hash is stored, every other session of the
 *   account is revoked and its sockets closed (OWASP: a changed password ends other sessions), so
 *   a password set because a device was lost also locks that device out.
 * - `sign_out` revokes sessions in the store and closes their sockets here with 4001 `signed out`.
 *   An account's connections are all on one instance (hub/sessions.ts), so closing them here
 *   closes them everywhere; a revoked token opens nothing on any instance.
 *
 * Nothing here logs a password, token or hash: only the name and the event.
 */
import type { Client } from "../client.ts";
import {
  passwordSetLine,
  readLine,
  type SessionEntry,
  sessionsLine,
  signedOutLine,
} from "../protocol/protocol.ts";
import { HasherBusyError, type PasswordHasher, passwordProblem } from "../auth/password.ts";
import { addressKey, type SignInLimiter } from "../auth/sign_in_limit.ts";
import type { AccountStore } from "../store/accounts.ts";
import type { HubObservers } from "./options.ts";
import type { Replies } from "./replies.ts";
import type { Sessions } from "./sessions.ts";
import type { Memberships } from "./member.ts";
import type { Rooms } from "./rooms.ts";

/** How long a client is asked to wait when every password hash slot is taken, in ms. */
export const HASHER_BUSY_RETRY_MS = 2000;

/** What {@linkcode AccountCommands} works with; all of it owned by the hub. */
export interface AccountCommandParts {
  accounts: AccountStore;
  sessions: Sessions;
  hasher: PasswordHasher;
  signIns: SignInLimiter;
  replies: Replies;
  observers: HubObservers;
  memberships: Memberships;
  rooms: Rooms;
}

/** Answers the account commands. */
export class AccountCommands {
  #p: AccountCommandParts;

  constructor(parts: AccountCommandParts) {
    this.#p = parts;
  }

  async markRead(client: Client, roomName: string, seq: number, cid?: string): Promise<void> {
    const { accounts, sessions, replies, memberships, rooms } = this.#p;
    const mine = sessions.sessionOf(client);
    const room = rooms.get(roomName);
    if (mine === undefined) return;
    if (room === undefined || memberships.peek(client)?.rooms.has(roomName) !== true) {
      return replies.refuse(client, "not_in_room", `Cannot mark read: not in ${roomName}`, cid);
    }
    try {
      const marker = await accounts.markRead(mine.accountId, roomName, Math.min(seq, room.latest));
      if (marker === null) return;
      const line = readLine(roomName, marker);
      for (const c of sessions.clientsOf(client.key)) replies.send(c, line);
    } catch (e) {
      replies.unavailable(client, e, "Cannot mark read: the store is unavailable", cid);
    }
  }

  async setPassword(
    client: Client,
    password: string,
    current: string | undefined,
    cid: string | undefined,
  ): Promise<void> {
    const { accounts, hasher, signIns, replies } = this.#p;
    const mine = this.#p.sessions.sessionOf(client);
    if (mine === undefined) return;
    const problem = passwordProblem(password);
    if (problem !== null) {
      return replies.refuse(client, "bad_request", `Cannot set password: ${problem}`, cid);
    }
    try {
      const account = await accounts.accountById(mine.accountId);
      if (account === null || client.closed) return;
      if (account.passwordHash !== null) {
        if (current === undefined) {
          const message = "Cannot set password: give the current password to change it";
          return replies.refuse(client, "wrong_password", message, cid);
        }
        const address = addressKey(client.address);
        const verdict = signIns.check(account.key, address);
        if (!verdict.ok) {
          const message = "Cannot set password: too many wrong passwords, try again later";
          return replies.refuse(client, "rate_limited", message, cid, verdict.retryAfterMs);
        }
        const checked = await hasher.verify(current, account.passwordHash);
        if (client.closed) return;
        if (!checked.ok) {
          signIns.failed(account.key, address);
          const message = "Cannot set password: the current password is wrong";
          return replies.refuse(client, "wrong_password", message, cid);
        }
      }
      const hash = await hasher.hash(password);
      if (!await accounts.setPassword(account.id, hash)) return;
      const ended = await accounts.revokeAllSessions(account.id, mine.session);
      this.#p.sessions.endSessions(ended);
      this.#p.observers.event?.("info", "password_set", {
        name: account.name,
        signedOut: ended.length,
      });
      if (!client.closed) replies.send(client, passwordSetLine(ended.length, cid));
    } catch (e) {
      if (e instanceof HasherBusyError) {
        const message = "Cannot set password: the server is busy, try again shortly";
        return replies.refuse(client, "unavailable", message, cid, HASHER_BUSY_RETRY_MS);
      }
      replies.unavailable(client, e, "Cannot set password: the store is unavailable", cid);
    }
  }

  async list(client: Client, cid: string | undefined): Promise<void> {
    const mine = this.#p.sessions.sessionOf(client);
    if (mine === undefined) return;
    try {
      const sessions = await this.#p.accounts.listSessions(mine.accountId);
      if (client.closed) return;
      const entries: SessionEntry[] = sessions.map((s) => ({
        id: s.id,
        device: s.device,
        createdAt: s.createdAt,
        lastSeenAt: s.lastSeenAt,
        current: s.id === mine.session,
      }));
      this.#p.replies.send(client, sessionsLine(entries, cid));
    } catch (e) {
      this.#p.replies.unavailable(client, e, "Cannot list sessions: the store is unavailable", cid);
    }
  }

  /** Ends this session (neither given), one session by id, or every other one (`others`). */
  async signOut(
    client: Client,
    which: { session?: string; others?: true },
    cid: string | undefined,
  ): Promise<void> {
    const { accounts, replies, sessions } = this.#p;
    const mine = sessions.sessionOf(client);
    if (mine === undefined) return;
    try {
      let ended: string[];
      if (which.others) ended = await accounts.revokeAllSessions(mine.accountId, mine.session);
      else {
        const id = which.session ?? mine.session;
        if (!await accounts.revokeSession(mine.accountId, id)) {
          return replies.refuse(client, "bad_request", "Cannot sign out: no such session", cid);
        }
        ended = [id];
      }
      this.#p.observers.event?.("info", "signed_out", {
        name: client.name ?? "",
        sessions: ended.length,
      });
      // Told first: when this session is among them, the close follows the reply.
      if (!client.closed) replies.send(client, signedOutLine(ended, cid));
      sessions.endSessions(ended);
    } catch (e) {
      replies.unavailable(client, e, "Cannot sign out: the store is unavailable", cid);
    }
  }
}
