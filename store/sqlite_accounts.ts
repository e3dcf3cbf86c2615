/**
 * The {@linkcode AccountStore} in SQLite: account tables in the message store's own file, on its
 * own connection (`SqliteStore#accounts()`), so one file, one lock and one backup hold everything.
 *
 * Schema: append-only migrations as in sqlite_store.ts, but versioned in a one-row table of their
 * own (`account_schema`), not in `PRAGMA user_version`, which belongs to the message tables. So
 * either schema moves on without the other, and a file opened only by a server that does not use
 * accounts is left exactly as it was. The tables are created the first time the account store is
 * opened on a file.
 *
 * Every method is synchronous; each change is one `BEGIN IMMEDIATE` transaction, so a name is
 * taken once, an invite's uses are counted exactly, and a read marker only moves forward. Deletes
 * cascade by hand (no `PRAGMA foreign_keys`, which is per connection and would change the message
 * store's connection too). Nothing is logged.
 *
 * Wiring: `SqliteStore.open(path).accounts()` in the start function; see store/accounts.ts for
 * which hub/sessions.ts step calls what.
 */
import type { DatabaseSync, SQLOutputValue, StatementSync } from "node:sqlite";
import { nameKey } from "../protocol/protocol.ts";
import {
  type Account,
  type AccountInfo,
  accountInfo,
  type AccountStore,
  checkDevice,
  checkInvite,
  type ConsumeInviteResult,
  type CreateAccountResult,
  type CreateInviteResult,
  type CreateSessionResult,
  DEAD_INVITE_KEEP_MS,
  type FoundSession,
  hashToken,
  type InviteInfo,
  inviteRefusal,
  type JoinedRoom,
  type JoinRoomResult,
  MAX_LISTED_ACCOUNTS,
  MAX_LIVE_INVITES_PER_ADMIN,
  MAX_PRUNED_INVITES_PER_CALL,
  MAX_RELEASED_PER_CALL,
  MAX_SESSIONS_PER_ACCOUNT,
  type NewAccount,
  type NewInvite,
  newToken,
  type Role,
  type SessionInfo,
} from "./accounts.ts";

/**
 * Migrations of the account tables; `account_schema.version` holds how many have run. Append new
 * steps, never edit old ones.
 *
 * `name_key` is UNIQUE: the database itself refuses a second account with one key. Sessions keep
 * the SHA-256 of their current token and, until the new one is first used, of the one before.
 * `used_up_at` records when an invite's last use was taken, so a used-up invite ages out like an
 * expired or revoked one.
 */
const ACCOUNT_MIGRATIONS: readonly string[] = [
  `CREATE TABLE accounts (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     name_key TEXT NOT NULL UNIQUE,
     created INTEGER NOT NULL,
     last_active INTEGER NOT NULL,
     password_hash TEXT,
     role TEXT NOT NULL CHECK (role IN ('member', 'admin')),
     disabled INTEGER NOT NULL DEFAULT 0
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX accounts_releasable ON accounts (last_active)
     WHERE password_hash IS NULL AND role = 'member';
   CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE,
     prev_token_hash TEXT UNIQUE,
     device TEXT NOT NULL,
     created INTEGER NOT NULL,
     last_seen INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX sessions_by_account ON sessions (account_id, last_seen);
   CREATE TABLE account_rooms (
     account_id TEXT NOT NULL,
     room TEXT NOT NULL,
     last_read INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (account_id, room)
   ) STRICT, WITHOUT ROWID;
   CREATE TABLE invites (
     id TEXT PRIMARY KEY,
     token_hash TEXT NOT NULL UNIQUE,
     created_by TEXT NOT NULL,
     created INTEGER NOT NULL,
     expires INTEGER NOT NULL,
     max_uses INTEGER NOT NULL,
     uses INTEGER NOT NULL DEFAULT 0,
     revoked_at INTEGER,
     used_up_at INTEGER
   ) STRICT;
   CREATE INDEX invites_by_admin ON invites (created_by);
   CREATE TABLE bootstrap (
     one INTEGER PRIMARY KEY CHECK (one = 1),
     token_hash TEXT NOT NULL,
     created INTEGER NOT NULL,
     used INTEGER NOT NULL DEFAULT 0
   ) STRICT;`,
];

/** The account schema version this code writes and understands. */
export const ACCOUNT_SCHEMA_VERSION = ACCOUNT_MIGRATIONS.length;

const ACCOUNT_COLUMNS = "id, name, name_key, created, last_active, password_hash, role, disabled";
const SESSION_COLUMNS = "id, account_id, device, created, last_seen";
const INVITE_COLUMNS = "id, created_by, created, expires, max_uses, uses, revoked_at";

/** Account tables on a connection the message store owns; see the module header. */
export class SqliteAccountStore implements AccountStore {
  #db: DatabaseSync;
  #closed = false;
  #s: Record<string, StatementSync>;

  /**
   * Prepares the account tables on `db` (creating or migrating them). The connection stays the
   * caller's: `close()` here only ends this store's use of it. Use `SqliteStore#accounts()`.
   */
  constructor(db: DatabaseSync, path = ":memory:") {
    this.#db = db;
    migrateAccounts(db, path);
    const p = (sql: string) => db.prepare(sql);
    this.#s = {
      begin: p("BEGIN IMMEDIATE"),
      commit: p("COMMIT"),
      rollback: p("ROLLBACK"),
      insertAccount: p(`INSERT INTO accounts (${ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, 0)
        ON CONFLICT (name_key) DO NOTHING`),
      accountById: p(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = ?`),
      accountByKey: p(`SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE name_key = ?`),
      listAccounts: p(
        `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE name_key > ? ORDER BY name_key LIMIT ?`,
      ),
      countAccounts: p("SELECT count(*) AS n FROM accounts"),
      setPassword: p("UPDATE accounts SET password_hash = ? WHERE id = ?"),
      setRole: p("UPDATE accounts SET role = ? WHERE id = ?"),
      setDisabled: p("UPDATE accounts SET disabled = ? WHERE id = ?"),
      touchAccount: p("UPDATE accounts SET last_active = max(last_active, ?) WHERE id = ?"),
      releasable: p(`SELECT ${ACCOUNT_COLUMNS} FROM accounts
        WHERE password_hash IS NULL AND role = 'member' AND last_active < ?
        ORDER BY last_active LIMIT ?`),
      deleteAccount: p("DELETE FROM accounts WHERE id = ?"),
      insertSession: p(
        `INSERT INTO sessions (id, account_id, token_hash, prev_token_hash, device, created, last_seen)
         VALUES (?, ?, ?, NULL, ?, ?, ?)`,
      ),
      sessionByToken: p(
        `SELECT ${SESSION_COLUMNS}, token_hash = ? AS current FROM sessions
         WHERE token_hash = ? OR prev_token_hash = ?`,
      ),
      dropPrevious: p("UPDATE sessions SET prev_token_hash = NULL WHERE id = ?"),
      rotate: p("UPDATE sessions SET token_hash = ?, prev_token_hash = ? WHERE id = ?"),
      touchSession: p(
        "UPDATE sessions SET last_seen = max(last_seen, ?) WHERE id = ? RETURNING account_id",
      ),
      sessionsOf: p(
        `SELECT ${SESSION_COLUMNS} FROM sessions WHERE account_id = ?
         ORDER BY last_seen DESC, created DESC, id`,
      ),
      countSessions: p("SELECT count(*) AS n FROM sessions WHERE account_id = ?"),
      leastRecentSession: p(
        "SELECT id FROM sessions WHERE account_id = ? ORDER BY last_seen, created, id LIMIT 1",
      ),
      deleteSession: p("DELETE FROM sessions WHERE id = ? AND account_id = ?"),
      deleteSessionsOf: p("DELETE FROM sessions WHERE account_id = ? AND id != ? RETURNING id"),
      insertRoom: p(
        "INSERT INTO account_rooms (account_id, room) VALUES (?, ?) ON CONFLICT DO NOTHING",
      ),
      hasRoom: p("SELECT 1 AS one FROM account_rooms WHERE account_id = ? AND room = ?"),
      countRooms: p("SELECT count(*) AS n FROM account_rooms WHERE account_id = ?"),
      deleteRoom: p("DELETE FROM account_rooms WHERE account_id = ? AND room = ?"),
      deleteRoomsOf: p("DELETE FROM account_rooms WHERE account_id = ?"),
      roomsOf: p("SELECT room, last_read FROM account_rooms WHERE account_id = ? ORDER BY room"),
      markRead: p(`UPDATE account_rooms SET last_read = max(last_read, ?)
        WHERE account_id = ? AND room = ? RETURNING last_read`),
      countLiveInvites: p(`SELECT count(*) AS n FROM invites WHERE created_by = ?
        AND revoked_at IS NULL AND uses < max_uses AND expires > ?`),
      insertInvite: p(`INSERT INTO invites (id, token_hash, created_by, created, expires, max_uses)
        VALUES (?, ?, ?, ?, ?, ?)`),
      inviteByToken: p(`SELECT ${INVITE_COLUMNS} FROM invites WHERE token_hash = ?`),
      useInvite: p(`UPDATE invites SET uses = uses + 1,
        used_up_at = CASE WHEN uses + 1 >= max_uses THEN ? ELSE NULL END WHERE id = ?`),
      revokeInvite: p("UPDATE invites SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
      listInvites: p(`SELECT ${INVITE_COLUMNS} FROM invites ORDER BY created DESC, id`),
      pruneInvites: p(`DELETE FROM invites WHERE id IN (SELECT id FROM invites
        WHERE min(expires, coalesce(revoked_at, expires), coalesce(used_up_at, expires)) < ?
        LIMIT ?)`),
      bootstrap: p("SELECT used FROM bootstrap"),
      putBootstrap: p(`INSERT INTO bootstrap (one, token_hash, created) VALUES (1, ?, ?)
        ON CONFLICT (one) DO UPDATE SET token_hash = excluded.token_hash, created = excluded.created`),
      useBootstrap: p(
        "UPDATE bootstrap SET used = 1, token_hash = '' WHERE used = 0 AND token_hash = ?",
      ),
      makeAdmin: p("UPDATE accounts SET role = 'admin' WHERE id = ?"),
    };
  }

  createAccount(account: NewAccount): CreateAccountResult {
    this.#open("create account");
    const a: Account = {
      id: crypto.randomUUID(),
      name: account.name,
      key: nameKey(account.name),
      createdAt: account.now,
      lastActiveAt: account.now,
      passwordHash: account.passwordHash ?? null,
      role: account.role ?? "member",
      disabled: false,
    };
    const { changes } = this.#s.insertAccount.run(
      a.id,
      a.name,
      a.key,
      a.createdAt,
      a.lastActiveAt,
      a.passwordHash,
      a.role,
    );
    return changes === 0 ? { ok: false, reason: "name_taken" } : { ok: true, account: a };
  }

  accountById(id: string): Account | null {
    this.#open("read account");
    return toAccountOrNull(this.#s.accountById.get(id));
  }

  accountByName(name: string): Account | null {
    this.#open("read account");
    return toAccountOrNull(this.#s.accountByKey.get(nameKey(name)));
  }

  listAccounts(limit: number, afterKey = ""): AccountInfo[] {
    this.#open("list accounts");
    const n = Math.min(Math.trunc(limit), MAX_LISTED_ACCOUNTS);
    if (!(n > 0)) return [];
    return this.#s.listAccounts.all(afterKey, n).map((row) => accountInfo(toAccount(row)));
  }

  setPassword(id: string, passwordHash: string | null): boolean {
    this.#open("set password");
    return this.#s.setPassword.run(passwordHash, id).changes > 0;
  }

  setRole(id: string, role: Role): boolean {
    this.#open("set role");
    return this.#s.setRole.run(role, id).changes > 0;
  }

  setDisabled(id: string, disabled: boolean): boolean {
    this.#open("disable account");
    return this.#transaction("disable account", () => {
      const changed = this.#s.setDisabled.run(disabled ? 1 : 0, id).changes > 0;
      if (changed && disabled) this.#s.deleteSessionsOf.all(id, "");
      return changed;
    });
  }

  releaseInactive(now: number, ttlMs: number): Account[] {
    this.#open("release accounts");
    return this.#transaction("release accounts", () => {
      const released = this.#s.releasable.all(now - ttlMs, MAX_RELEASED_PER_CALL).map(toAccount);
      for (const a of released) this.#deleteAccount(a.id);
      return released;
    });
  }

  createSession(accountId: string, device: string, now: number): CreateSessionResult {
    this.#open("create session");
    checkDevice(device, "create session");
    return this.#transaction("create session", () => {
      const account = toAccountOrNull(this.#s.accountById.get(accountId));
      if (account === null) return { ok: false, reason: "no_account" };
      if (account.disabled) return { ok: false, reason: "disabled" };
      let evicted: string | null = null;
      const count = Number(this.#s.countSessions.get(accountId)?.n);
      if (count >= MAX_SESSIONS_PER_ACCOUNT) {
        evicted = String(this.#s.leastRecentSession.get(accountId)?.id);
        this.#s.deleteSession.run(evicted, accountId);
      }
      const token = newToken();
      const session: SessionInfo = {
        id: crypto.randomUUID(),
        accountId,
        device,
        createdAt: now,
        lastSeenAt: now,
      };
      this.#s.insertSession.run(session.id, accountId, hashToken(token), device, now, now);
      return { ok: true, token, session, evicted };
    });
  }

  findSession(token: string): FoundSession | null {
    this.#open("find session");
    const hash = hashToken(token);
    return this.#transaction("find session", () => {
      const row = this.#s.sessionByToken.get(hash, hash, hash);
      if (row === undefined) return null;
      const account = toAccountOrNull(this.#s.accountById.get(row.account_id));
      if (account === null || account.disabled) return null;
      const current = Number(row.current) === 1;
      // The new token is in use: the one it replaced stops working now.
      if (current) this.#s.dropPrevious.run(row.id);
      return { session: toSession(row), account, previous: !current };
    });
  }

  rotateSession(token: string): { token: string; session: SessionInfo } | null {
    this.#open("rotate session");
    const hash = hashToken(token);
    return this.#transaction("rotate session", () => {
      const row = this.#s.sessionByToken.get(hash, hash, hash);
      if (row === undefined) return null;
      const fresh = newToken();
      // The presented token stays accepted (as the previous one) until `fresh` is first used;
      // any other token, such as one issued in a welcome that was lost, is dropped.
      this.#s.rotate.run(hashToken(fresh), hash, row.id);
      return { token: fresh, session: toSession(row) };
    });
  }

  touchSession(sessionId: string, now: number): void {
    this.#open("touch session");
    this.#transaction("touch session", () => {
      const row = this.#s.touchSession.get(now, sessionId);
      if (row !== undefined) this.#s.touchAccount.run(now, row.account_id);
    });
  }

  revokeSession(accountId: string, sessionId: string): boolean {
    this.#open("revoke session");
    return this.#s.deleteSession.run(sessionId, accountId).changes > 0;
  }

  revokeAllSessions(accountId: string, keep = ""): string[] {
    this.#open("revoke sessions");
    return this.#s.deleteSessionsOf.all(accountId, keep).map((row) => String(row.id));
  }

  listSessions(accountId: string): SessionInfo[] {
    this.#open("list sessions");
    return this.#s.sessionsOf.all(accountId).map(toSession);
  }

  joinRoom(accountId: string, room: string, maxRooms: number): JoinRoomResult {
    this.#open("join room");
    return this.#transaction("join room", () => {
      if (this.#s.accountById.get(accountId) === undefined) {
        return { ok: false, reason: "no_account" };
      }
      if (this.#s.hasRoom.get(accountId, room) !== undefined) return { ok: true, added: false };
      if (Number(this.#s.countRooms.get(accountId)?.n) >= maxRooms) {
        return { ok: false, reason: "too_many_rooms" };
      }
      this.#s.insertRoom.run(accountId, room);
      return { ok: true, added: true };
    });
  }

  leaveRoom(accountId: string, room: string): boolean {
    this.#open("leave room");
    return this.#s.deleteRoom.run(accountId, room).changes > 0;
  }

  listRooms(accountId: string): JoinedRoom[] {
    this.#open("list rooms");
    return this.#s.roomsOf.all(accountId).map((row) => ({
      room: String(row.room),
      lastRead: Number(row.last_read),
    }));
  }

  markRead(accountId: string, room: string, seq: number): number | null {
    this.#open("mark read");
    const row = this.#s.markRead.get(Math.trunc(seq), accountId, room);
    return row === undefined ? null : Number(row.last_read);
  }

  createInvite(invite: NewInvite): CreateInviteResult {
    this.#open("create invite");
    checkInvite(invite);
    return this.#transaction("create invite", () => {
      const live = Number(this.#s.countLiveInvites.get(invite.createdBy, invite.now)?.n);
      if (live >= MAX_LIVE_INVITES_PER_ADMIN) return { ok: false, reason: "too_many_invites" };
      const token = newToken();
      const info: InviteInfo = {
        id: crypto.randomUUID(),
        createdBy: invite.createdBy,
        createdAt: invite.now,
        expiresAt: invite.expiresAt,
        maxUses: invite.maxUses,
        uses: 0,
        revokedAt: null,
      };
      this.#s.insertInvite.run(
        info.id,
        hashToken(token),
        info.createdBy,
        info.createdAt,
        info.expiresAt,
        info.maxUses,
      );
      return { ok: true, token, invite: info };
    });
  }

  consumeInvite(token: string, now: number): ConsumeInviteResult {
    this.#open("use invite");
    return this.#transaction("use invite", () => {
      const row = this.#s.inviteByToken.get(hashToken(token));
      if (row === undefined) return { ok: false, reason: "unknown" };
      const invite = toInvite(row);
      const refusal = inviteRefusal(invite, now);
      if (refusal !== null) return { ok: false, reason: refusal };
      this.#s.useInvite.run(now, invite.id);
      return { ok: true, invite: { ...invite, uses: invite.uses + 1 } };
    });
  }

  revokeInvite(id: string, now: number): boolean {
    this.#open("revoke invite");
    return this.#s.revokeInvite.run(now, id).changes > 0;
  }

  listInvites(): InviteInfo[] {
    this.#open("list invites");
    return this.#s.listInvites.all().map(toInvite);
  }

  pruneInvites(now: number): number {
    this.#open("prune invites");
    return Number(
      this.#s.pruneInvites.run(now - DEAD_INVITE_KEEP_MS, MAX_PRUNED_INVITES_PER_CALL).changes,
    );
  }

  createBootstrapToken(now: number): string | null {
    this.#open("create bootstrap token");
    return this.#transaction("create bootstrap token", () => {
      const state = this.#s.bootstrap.get();
      const pending = state !== undefined && Number(state.used) === 0;
      const empty = Number(this.#s.countAccounts.get()?.n) === 0;
      // Once used, never again; otherwise while nobody has an account, or the last link was not
      // used yet (a restart prints a new one and the old one dies).
      if (state !== undefined && !pending) return null;
      if (!pending && !empty) return null;
      const token = newToken();
      this.#s.putBootstrap.run(hashToken(token), now);
      return token;
    });
  }

  useBootstrapToken(token: string, accountId: string): boolean {
    this.#open("use bootstrap token");
    return this.#transaction("use bootstrap token", () => {
      if (this.#s.accountById.get(accountId) === undefined) return false;
      if (this.#s.useBootstrap.run(hashToken(token)).changes === 0) return false;
      this.#s.makeAdmin.run(accountId);
      return true;
    });
  }

  /** Ends this store's use of the connection (the message store closes it); safe twice. */
  close(): void {
    this.#closed = true;
  }

  #deleteAccount(id: string): void {
    this.#s.deleteSessionsOf.all(id, "");
    this.#s.deleteRoomsOf.run(id);
    this.#s.deleteAccount.run(id);
  }

  /** Runs `fn` in one BEGIN IMMEDIATE transaction; rolls back and rethrows on any error. */
  #transaction<T>(action: string, fn: () => T): T {
    try {
      this.#s.begin.run();
      const result = fn();
      this.#s.commit.run();
      return result;
    } catch (e) {
      if (this.#db.isTransaction) {
        try {
          this.#s.rollback.run();
        } catch {
          // The original error is the one worth reporting.
        }
      }
      throw new Error(`Cannot ${action}: ${e instanceof Error ? e.message : String(e)}`, {
        cause: e,
      });
    }
  }

  #open(action: string): void {
    if (this.#closed || !this.#db.isOpen) {
      throw new Error(`Cannot ${action}: the account store is closed`);
    }
  }
}

/** Creates or migrates the account tables on `db`, in one transaction. */
function migrateAccounts(db: DatabaseSync, path: string): void {
  db.exec("CREATE TABLE IF NOT EXISTS account_schema (version INTEGER NOT NULL) STRICT");
  const version = Number(db.prepare("SELECT max(version) AS v FROM account_schema").get()?.v ?? 0);
  if (version > ACCOUNT_SCHEMA_VERSION) {
    throw new Error(
      `Cannot open account store: ${path} has account schema version ${version}, newer than ${ACCOUNT_SCHEMA_VERSION}`,
    );
  }
  if (version === ACCOUNT_SCHEMA_VERSION) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    for (const step of ACCOUNT_MIGRATIONS.slice(version)) db.exec(step);
    db.exec("DELETE FROM account_schema");
    db.prepare("INSERT INTO account_schema (version) VALUES (?)").run(ACCOUNT_SCHEMA_VERSION);
    db.exec("COMMIT");
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw new Error(
      `Cannot open account store: migrating ${path} failed: ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
}

type Row = Record<string, SQLOutputValue>;

function toAccount(row: Row): Account {
  return {
    id: String(row.id),
    name: String(row.name),
    key: String(row.name_key),
    createdAt: Number(row.created),
    lastActiveAt: Number(row.last_active),
    passwordHash: row.password_hash === null ? null : String(row.password_hash),
    role: row.role === "admin" ? "admin" : "member",
    disabled: Number(row.disabled) === 1,
  };
}

function toAccountOrNull(row: Row | undefined): Account | null {
  return row === undefined ? null : toAccount(row);
}

function toSession(row: Row): SessionInfo {
  return {
    id: String(row.id),
    accountId: String(row.account_id),
    device: String(row.device),
    createdAt: Number(row.created),
    lastSeenAt: Number(row.last_seen),
  };
}

function toInvite(row: Row): InviteInfo {
  return {
    id: String(row.id),
    createdBy: String(row.created_by),
    createdAt: Number(row.created),
    expiresAt: Number(row.expires),
    maxUses: Number(row.max_uses),
    uses: Number(row.uses),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}
