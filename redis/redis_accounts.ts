/**
 * The {@linkcode AccountStore} in Redis, so every instance of a cluster sees one set of accounts,
 * sessions, read markers and invites.
 *
 * Layout (prefix `chat:` by default; ids are random UUIDs, hashes are SHA-256 hex of a token):
 * - `chat:account:{id}` — hash: `name`, `key`, `created`, `active`, `pw` (only with a password),
 *   `role`, `disabled` ("0"/"1"). `chat:account-key:{nameKey}` — the id holding that key (taken
 *   with SET NX: one name, one account). `chat:accounts` — every key, score 0, for listing by key.
 *   `chat:accounts:releasable` — ids of password-less members by last activity, for release.
 * - `chat:session:{id}` — hash: `account`, `device`, `created`, `seen`, `token`, `prev` (hashes;
 *   `prev` is "" once the current token was used). `chat:session-token:{hash}` — the session a
 *   current or previous token opens. `chat:account:{id}:sessions` — the account's session ids by
 *   last seen.
 * - `chat:account:{id}:rooms` — hash room → last-read seq.
 * - `chat:invite:{id}` — hash: `token`, `by`, `created`, `expires`, `max`, `uses`, `revoked`,
 *   `usedUp` ("" when not). `chat:invite-token:{hash}`, `chat:invites` (ids by creation),
 *   `chat:invites:by:{admin id}` (ids).
 * - `chat:bootstrap` — hash: `token`, `used`, `created`.
 *
 * Every change is one Lua script, so it is atomic across instances: a key is taken once, an
 * invite's uses are counted exactly, a read marker only moves forward, a rotation drops exactly
 * the tokens it must. The scripts build keys from the prefix as they go (as redis_presence.ts
 * does), so this is for a single Redis, not Redis Cluster. Timestamps travel as the decimal
 * strings they arrived as and are only compared in Lua (doubles hold ms timestamps exactly), never
 * turned back into strings there, where Lua would write them in exponent form.
 *
 * When Redis is unreachable every method rejects at once (redis_client.ts); a write rejected by a
 * timeout may still have happened. Nothing is logged.
 *
 * Wiring: `RedisAccountStore.connect({ url: --redis, prefix })` in the start function when
 * `--redis` is given; see store/accounts.ts for which hub/sessions.ts step calls what.
 */
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
  type InviteRefusal,
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
} from "../store/accounts.ts";
import {
  closeRedis,
  connectRedis,
  type Redis,
  type RedisConnectionOptions,
  Script,
} from "./redis_client.ts";

/** Options for {@linkcode RedisAccountStore.connect}. */
export interface RedisAccountStoreOptions extends RedisConnectionOptions {
  /** `redis://[:password@]host:port[/db]`. */
  url: string;
  /** Prefix of every key, so several chats can share one Redis. @default "chat:" */
  prefix?: string;
}

// ARGV[1] is always the prefix. Helpers every script shares.
const LIB = `
local p = ARGV[1]
local function akey(id) return p .. 'account:' .. id end
-- Puts the account in the releasable set exactly when it has no password and is a member.
local function fixReleasable(id)
  local h = akey(id)
  if redis.call('HEXISTS', h, 'pw') == 0 and redis.call('HGET', h, 'role') == 'member' then
    redis.call('ZADD', p .. 'accounts:releasable', redis.call('HGET', h, 'active'), id)
  else
    redis.call('ZREM', p .. 'accounts:releasable', id)
  end
end
local function dropSession(sid)
  local s = p .. 'session:' .. sid
  local f = redis.call('HMGET', s, 'account', 'token', 'prev')
  if not f[1] then return false end
  redis.call('DEL', p .. 'session-token:' .. f[2])
  if f[3] and f[3] ~= '' then redis.call('DEL', p .. 'session-token:' .. f[3]) end
  redis.call('DEL', s)
  redis.call('ZREM', akey(f[1]) .. ':sessions', sid)
  return true
end
local function dropSessionsOf(id, keep)
  local out = {}
  for _, sid in ipairs(redis.call('ZRANGE', akey(id) .. ':sessions', 0, -1)) do
    if sid ~= keep then
      dropSession(sid)
      out[#out + 1] = sid
    end
  end
  return out
end
`;

// ARGV: p, id, name, key, now, password hash ("" for none), role. Returns 1, or 0 if the key is taken.
const CREATE_ACCOUNT = new Script(
  LIB + `
if not redis.call('SET', p .. 'account-key:' .. ARGV[4], ARGV[2], 'NX') then return 0 end
local h = { 'name', ARGV[3], 'key', ARGV[4], 'created', ARGV[5], 'active', ARGV[5],
  'role', ARGV[7], 'disabled', '0' }
if ARGV[6] ~= '' then
  h[#h + 1] = 'pw'
  h[#h + 1] = ARGV[6]
end
redis.call('HSET', akey(ARGV[2]), unpack(h))
redis.call('ZADD', p .. 'accounts', 0, ARGV[4])
fixReleasable(ARGV[2])
return 1
`,
);

// ARGV: p, key. Returns { id, fields } or false.
const ACCOUNT_BY_KEY = new Script(
  LIB + `
local id = redis.call('GET', p .. 'account-key:' .. ARGV[2])
if not id then return false end
local a = redis.call('HGETALL', akey(id))
if #a == 0 then return false end
return { id, a }
`,
);

// ARGV: p, after key ("" for the start), limit. Returns { id, fields } per account.
const LIST_ACCOUNTS = new Script(
  LIB + `
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local out = {}
for _, key in ipairs(redis.call('ZRANGE', p .. 'accounts', from, '+', 'BYLEX', 'LIMIT', 0, tonumber(ARGV[3]))) do
  local id = redis.call('GET', p .. 'account-key:' .. key)
  if id then out[#out + 1] = { id, redis.call('HGETALL', akey(id)) } end
end
return out
`,
);

// ARGV: p, id, field, value ("" deletes the field). Returns 1, or 0 for no such account.
const SET_FIELD = new Script(
  LIB + `
local h = akey(ARGV[2])
if redis.call('EXISTS', h) == 0 then return 0 end
if ARGV[4] == '' then redis.call('HDEL', h, ARGV[3]) else redis.call('HSET', h, ARGV[3], ARGV[4]) end
if ARGV[3] == 'disabled' and ARGV[4] == '1' then dropSessionsOf(ARGV[2], '') end
fixReleasable(ARGV[2])
return 1
`,
);

// ARGV: p, cutoff, limit. Deletes releasable accounts idle since before cutoff; returns
// { id, fields } for each.
const RELEASE = new Script(
  LIB + `
local cutoff = tonumber(ARGV[2])
local out = {}
local ids = redis.call('ZRANGE', p .. 'accounts:releasable', '-inf', '(' .. ARGV[2], 'BYSCORE',
  'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local h = akey(id)
  local a = redis.call('HGETALL', h)
  redis.call('ZREM', p .. 'accounts:releasable', id)
  if #a > 0 and redis.call('HEXISTS', h, 'pw') == 0 and redis.call('HGET', h, 'role') == 'member'
      and tonumber(redis.call('HGET', h, 'active')) < cutoff then
    local key = redis.call('HGET', h, 'key')
    dropSessionsOf(id, '')
    redis.call('DEL', h, h .. ':rooms', h .. ':sessions')
    if redis.call('GET', p .. 'account-key:' .. key) == id then
      redis.call('DEL', p .. 'account-key:' .. key)
      redis.call('ZREM', p .. 'accounts', key)
    end
    out[#out + 1] = { id, a }
  end
end
return out
`,
);

// ARGV: p, account id, session id, token hash, device, now, max sessions.
// Returns { 'ok', evicted id or '' } or { reason }.
const CREATE_SESSION = new Script(
  LIB + `
local h = akey(ARGV[2])
if redis.call('EXISTS', h) == 0 then return { 'no_account' } end
if redis.call('HGET', h, 'disabled') == '1' then return { 'disabled' } end
local z = h .. ':sessions'
local evicted = ''
if redis.call('ZCARD', z) >= tonumber(ARGV[7]) then
  evicted = redis.call('ZRANGE', z, 0, 0)[1]
  dropSession(evicted)
end
redis.call('HSET', p .. 'session:' .. ARGV[3], 'account', ARGV[2], 'device', ARGV[5],
  'created', ARGV[6], 'seen', ARGV[6], 'token', ARGV[4], 'prev', '')
redis.call('SET', p .. 'session-token:' .. ARGV[4], ARGV[3])
redis.call('ZADD', z, ARGV[6], ARGV[3])
return { 'ok', evicted }
`,
);

// ARGV: p, token hash. Returns { session id, 1 if current else 0, session fields, account
// fields } or false. The current token drops the previous one.
const FIND_SESSION = new Script(
  LIB + `
local sid = redis.call('GET', p .. 'session-token:' .. ARGV[2])
if not sid then return false end
local s = p .. 'session:' .. sid
local f = redis.call('HMGET', s, 'account', 'token', 'prev')
if not f[1] then return false end
local a = redis.call('HGETALL', akey(f[1]))
if #a == 0 then return false end
local current = 0
if f[2] == ARGV[2] then
  current = 1
  if f[3] ~= '' then
    redis.call('DEL', p .. 'session-token:' .. f[3])
    redis.call('HSET', s, 'prev', '')
  end
end
return { sid, current, redis.call('HGETALL', s), a }
`,
);

// ARGV: p, presented token hash, new token hash. Returns { session id, fields } or false.
// The presented token becomes the previous one; any other token of the session is dropped.
const ROTATE_SESSION = new Script(
  LIB + `
local sid = redis.call('GET', p .. 'session-token:' .. ARGV[2])
if not sid then return false end
local s = p .. 'session:' .. sid
local f = redis.call('HMGET', s, 'token', 'prev')
if not f[1] then return false end
if f[1] ~= ARGV[2] then redis.call('DEL', p .. 'session-token:' .. f[1]) end
if f[2] and f[2] ~= '' and f[2] ~= ARGV[2] then redis.call('DEL', p .. 'session-token:' .. f[2]) end
redis.call('HSET', s, 'token', ARGV[3], 'prev', ARGV[2])
redis.call('SET', p .. 'session-token:' .. ARGV[3], sid)
return { sid, redis.call('HGETALL', s) }
`,
);

// ARGV: p, session id, now. Moves the session's and its account's times forward.
const TOUCH_SESSION = new Script(
  LIB + `
local s = p .. 'session:' .. ARGV[2]
local acc = redis.call('HGET', s, 'account')
if not acc then return 0 end
local now = tonumber(ARGV[3])
if tonumber(redis.call('HGET', s, 'seen')) < now then
  redis.call('HSET', s, 'seen', ARGV[3])
  redis.call('ZADD', akey(acc) .. ':sessions', ARGV[3], ARGV[2])
end
local h = akey(acc)
local active = redis.call('HGET', h, 'active')
if active and tonumber(active) < now then
  redis.call('HSET', h, 'active', ARGV[3])
  redis.call('ZADD', p .. 'accounts:releasable', 'XX', ARGV[3], acc)
end
return 1
`,
);

// ARGV: p, account id, session id. Returns 1 if revoked.
const REVOKE_SESSION = new Script(
  LIB + `
if redis.call('HGET', p .. 'session:' .. ARGV[3], 'account') ~= ARGV[2] then return 0 end
dropSession(ARGV[3])
return 1
`,
);

// ARGV: p, account id, session id to keep ("" for none). Returns the revoked ids.
const REVOKE_ALL = new Script(LIB + `return dropSessionsOf(ARGV[2], ARGV[3])`);

// ARGV: p, account id. Returns { session id, fields } per session, most recently seen first.
const LIST_SESSIONS = new Script(
  LIB + `
local out = {}
for _, sid in ipairs(redis.call('ZREVRANGE', akey(ARGV[2]) .. ':sessions', 0, -1)) do
  out[#out + 1] = { sid, redis.call('HGETALL', p .. 'session:' .. sid) }
end
return out
`,
);

// ARGV: p, account id, room, max rooms. Returns 'added', 'present', 'full' or 'no_account'.
const JOIN_ROOM = new Script(
  LIB + `
if redis.call('EXISTS', akey(ARGV[2])) == 0 then return 'no_account' end
local r = akey(ARGV[2]) .. ':rooms'
if redis.call('HEXISTS', r, ARGV[3]) == 1 then return 'present' end
if redis.call('HLEN', r) >= tonumber(ARGV[4]) then return 'full' end
redis.call('HSET', r, ARGV[3], '0')
return 'added'
`,
);

// ARGV: p, account id, room, seq. Returns the marker now, or false when the room is not joined.
const MARK_READ = new Script(
  LIB + `
local r = akey(ARGV[2]) .. ':rooms'
local cur = redis.call('HGET', r, ARGV[3])
if not cur then return false end
if tonumber(ARGV[4]) > tonumber(cur) then
  redis.call('HSET', r, ARGV[3], ARGV[4])
  return ARGV[4]
end
return cur
`,
);

// ARGV: p, invite id, token hash, admin id, now, expires, max uses, live limit.
// Returns 1, or 0 when the admin holds the limit of live invites.
const CREATE_INVITE = new Script(
  LIB + `
local set = p .. 'invites:by:' .. ARGV[4]
local now = tonumber(ARGV[5])
local live = 0
for _, iid in ipairs(redis.call('SMEMBERS', set)) do
  local f = redis.call('HMGET', p .. 'invite:' .. iid, 'expires', 'max', 'uses', 'revoked')
  if not f[1] then
    redis.call('SREM', set, iid)
  elseif f[4] == '' and tonumber(f[3]) < tonumber(f[2]) and tonumber(f[1]) > now then
    live = live + 1
  end
end
if live >= tonumber(ARGV[8]) then return 0 end
redis.call('HSET', p .. 'invite:' .. ARGV[2], 'token', ARGV[3], 'by', ARGV[4], 'created', ARGV[5],
  'expires', ARGV[6], 'max', ARGV[7], 'uses', '0', 'revoked', '', 'usedUp', '')
redis.call('SET', p .. 'invite-token:' .. ARGV[3], ARGV[2])
redis.call('ZADD', p .. 'invites', ARGV[5], ARGV[2])
redis.call('SADD', set, ARGV[2])
return 1
`,
);

// ARGV: p, token hash, now. Returns { 'ok', id, fields } or { reason }, reasons in the order of
// inviteRefusal (store/accounts.ts).
const CONSUME_INVITE = new Script(
  LIB + `
local iid = redis.call('GET', p .. 'invite-token:' .. ARGV[2])
if not iid then return { 'unknown' } end
local k = p .. 'invite:' .. iid
if redis.call('EXISTS', k) == 0 then return { 'unknown' } end
local f = redis.call('HMGET', k, 'expires', 'max', 'uses', 'revoked')
if f[4] ~= '' then return { 'revoked' } end
if tonumber(f[3]) >= tonumber(f[2]) then return { 'used_up' } end
if tonumber(ARGV[3]) >= tonumber(f[1]) then return { 'expired' } end
if redis.call('HINCRBY', k, 'uses', 1) >= tonumber(f[2]) then redis.call('HSET', k, 'usedUp', ARGV[3]) end
return { 'ok', iid, redis.call('HGETALL', k) }
`,
);

// ARGV: p, invite id, now. Returns 1 if revoked now.
const REVOKE_INVITE = new Script(
  LIB + `
local k = p .. 'invite:' .. ARGV[2]
local revoked = redis.call('HGET', k, 'revoked')
if revoked ~= '' then return 0 end
redis.call('HSET', k, 'revoked', ARGV[3])
return 1
`,
);

// ARGV: p. Returns { id, fields } per invite, newest first.
const LIST_INVITES = new Script(
  LIB + `
local out = {}
for _, iid in ipairs(redis.call('ZREVRANGE', p .. 'invites', 0, -1)) do
  out[#out + 1] = { iid, redis.call('HGETALL', p .. 'invite:' .. iid) }
end
return out
`,
);

// ARGV: p, cutoff, limit. Deletes invites dead since before cutoff; returns how many.
const PRUNE_INVITES = new Script(
  LIB + `
local cutoff = tonumber(ARGV[2])
local left = tonumber(ARGV[3])
local removed = 0
for _, iid in ipairs(redis.call('ZRANGE', p .. 'invites', 0, -1)) do
  if removed >= left then break end
  local k = p .. 'invite:' .. iid
  local f = redis.call('HMGET', k, 'expires', 'revoked', 'usedUp', 'token', 'by')
  local dead = tonumber(f[1])
  if f[2] and f[2] ~= '' and tonumber(f[2]) < dead then dead = tonumber(f[2]) end
  if f[3] and f[3] ~= '' and tonumber(f[3]) < dead then dead = tonumber(f[3]) end
  if dead == nil or dead < cutoff then
    if f[4] then redis.call('DEL', p .. 'invite-token:' .. f[4]) end
    if f[5] then redis.call('SREM', p .. 'invites:by:' .. f[5], iid) end
    redis.call('DEL', k)
    redis.call('ZREM', p .. 'invites', iid)
    removed = removed + 1
  end
end
return removed
`,
);

// ARGV: p, token hash, now. Returns 1 when the token was stored.
const CREATE_BOOTSTRAP = new Script(
  LIB + `
local b = p .. 'bootstrap'
local used = redis.call('HGET', b, 'used')
if used == '1' then return 0 end
if not used and redis.call('ZCARD', p .. 'accounts') > 0 then return 0 end
redis.call('HSET', b, 'token', ARGV[2], 'used', '0', 'created', ARGV[3])
return 1
`,
);

// ARGV: p, token hash, account id. Returns 1 when the account was made an admin.
const USE_BOOTSTRAP = new Script(
  LIB + `
local b = p .. 'bootstrap'
if redis.call('EXISTS', akey(ARGV[3])) == 0 then return 0 end
if redis.call('HGET', b, 'used') ~= '0' or redis.call('HGET', b, 'token') ~= ARGV[2] then return 0 end
redis.call('HSET', b, 'used', '1', 'token', '')
redis.call('HSET', akey(ARGV[3]), 'role', 'admin')
fixReleasable(ARGV[3])
return 1
`,
);

/** Accounts, sessions, rooms, invites and the bootstrap token in Redis, shared by every instance. */
export class RedisAccountStore implements AccountStore {
  #client: Redis;
  #prefix: string;
  #closed = false;

  private constructor(client: Redis, prefix: string) {
    this.#client = client;
    this.#prefix = prefix;
  }

  /**
   * Connects to Redis; rejects when the first connection attempt fails.
   *
   * @example
   * ```ts ignore
   * const accounts = await RedisAccountStore.connect({ url: "redis://127.0.0.1:6379" });
   * const made = await accounts.createAccount({ name: "alice", now: Date.now() });
   * await accounts.close();
   * ```
   */
  static async connect(options: RedisAccountStoreOptions): Promise<RedisAccountStore> {
    return new RedisAccountStore(
      await connectRedis(options.url, options),
      options.prefix ?? "chat:",
    );
  }

  async createAccount(account: NewAccount): Promise<CreateAccountResult> {
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
    const created = await this.#run("create account", CREATE_ACCOUNT, [
      a.id,
      a.name,
      a.key,
      a.createdAt,
      a.passwordHash ?? "",
      a.role,
    ]);
    return Number(created) === 1 ? { ok: true, account: a } : { ok: false, reason: "name_taken" };
  }

  async accountById(id: string): Promise<Account | null> {
    this.#checkOpen("read account");
    const fields = await this.#client.hgetall(this.#prefix + `account:${id}`);
    return Object.keys(fields).length === 0 ? null : toAccount(id, fields);
  }

  async accountByName(name: string): Promise<Account | null> {
    const reply = await this.#run("read account", ACCOUNT_BY_KEY, [nameKey(name)]);
    return Array.isArray(reply) ? toAccount(String(reply[0]), pairs(reply[1])) : null;
  }

  async listAccounts(limit: number, afterKey = ""): Promise<AccountInfo[]> {
    this.#checkOpen("list accounts");
    const n = Math.min(Math.trunc(limit), MAX_LISTED_ACCOUNTS);
    if (!(n > 0)) return [];
    const reply = await this.#run("list accounts", LIST_ACCOUNTS, [afterKey, n]);
    return entries(reply).map((e) => accountInfo(toAccount(String(e[0]), pairs(e[1]))));
  }

  async setPassword(id: string, passwordHash: string | null): Promise<boolean> {
    return Number(await this.#run("set password", SET_FIELD, [id, "pw", passwordHash ?? ""])) === 1;
  }

  async setRole(id: string, role: Role): Promise<boolean> {
    return Number(await this.#run("set role", SET_FIELD, [id, "role", role])) === 1;
  }

  async setDisabled(id: string, disabled: boolean): Promise<boolean> {
    const value = disabled ? "1" : "0";
    return Number(await this.#run("disable account", SET_FIELD, [id, "disabled", value])) === 1;
  }

  async releaseInactive(now: number, ttlMs: number): Promise<Account[]> {
    const reply = await this.#run("release accounts", RELEASE, [
      now - ttlMs,
      MAX_RELEASED_PER_CALL,
    ]);
    return entries(reply).map((e) => toAccount(String(e[0]), pairs(e[1])));
  }

  async createSession(
    accountId: string,
    device: string,
    now: number,
  ): Promise<CreateSessionResult> {
    this.#checkOpen("create session");
    checkDevice(device, "create session");
    const token = newToken();
    const id = crypto.randomUUID();
    const reply = list(
      await this.#run("create session", CREATE_SESSION, [
        accountId,
        id,
        hashToken(token),
        device,
        now,
        MAX_SESSIONS_PER_ACCOUNT,
      ]),
    );
    if (reply[0] === "no_account" || reply[0] === "disabled") {
      return { ok: false, reason: reply[0] };
    }
    const evicted = String(reply[1] ?? "");
    return {
      ok: true,
      token,
      session: { id, accountId, device, createdAt: now, lastSeenAt: now },
      evicted: evicted === "" ? null : evicted,
    };
  }

  async findSession(token: string): Promise<FoundSession | null> {
    const reply = await this.#run("find session", FIND_SESSION, [hashToken(token)]);
    if (!Array.isArray(reply)) return null;
    const session = toSession(String(reply[0]), pairs(reply[2]));
    const account = toAccount(session.accountId, pairs(reply[3]));
    if (account.disabled) return null;
    return { session, account, previous: Number(reply[1]) !== 1 };
  }

  async rotateSession(token: string): Promise<{ token: string; session: SessionInfo } | null> {
    const fresh = newToken();
    const reply = await this.#run("rotate session", ROTATE_SESSION, [
      hashToken(token),
      hashToken(fresh),
    ]);
    if (!Array.isArray(reply)) return null;
    return { token: fresh, session: toSession(String(reply[0]), pairs(reply[1])) };
  }

  async touchSession(sessionId: string, now: number): Promise<void> {
    await this.#run("touch session", TOUCH_SESSION, [sessionId, now]);
  }

  async revokeSession(accountId: string, sessionId: string): Promise<boolean> {
    return Number(await this.#run("revoke session", REVOKE_SESSION, [accountId, sessionId])) === 1;
  }

  async revokeAllSessions(accountId: string, keep = ""): Promise<string[]> {
    return list(await this.#run("revoke sessions", REVOKE_ALL, [accountId, keep])).map(String);
  }

  async listSessions(accountId: string): Promise<SessionInfo[]> {
    const reply = await this.#run("list sessions", LIST_SESSIONS, [accountId]);
    return entries(reply).map((e) => toSession(String(e[0]), pairs(e[1])));
  }

  async joinRoom(accountId: string, room: string, maxRooms: number): Promise<JoinRoomResult> {
    const reply = String(await this.#run("join room", JOIN_ROOM, [accountId, room, maxRooms]));
    if (reply === "no_account") return { ok: false, reason: "no_account" };
    if (reply === "full") return { ok: false, reason: "too_many_rooms" };
    return { ok: true, added: reply === "added" };
  }

  async leaveRoom(accountId: string, room: string): Promise<boolean> {
    this.#checkOpen("leave room");
    return await this.#client.hdel(this.#prefix + `account:${accountId}:rooms`, room) > 0;
  }

  async listRooms(accountId: string): Promise<JoinedRoom[]> {
    this.#checkOpen("list rooms");
    const fields = await this.#client.hgetall(this.#prefix + `account:${accountId}:rooms`);
    return Object.entries(fields)
      .map(([room, seq]) => ({ room, lastRead: Number(seq) }))
      .sort((a, b) => a.room < b.room ? -1 : a.room > b.room ? 1 : 0);
  }

  async markRead(accountId: string, room: string, seq: number): Promise<number | null> {
    const reply = await this.#run("mark read", MARK_READ, [accountId, room, Math.trunc(seq)]);
    return reply === null ? null : Number(reply);
  }

  async createInvite(invite: NewInvite): Promise<CreateInviteResult> {
    this.#checkOpen("create invite");
    checkInvite(invite);
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
    const created = await this.#run("create invite", CREATE_INVITE, [
      info.id,
      hashToken(token),
      info.createdBy,
      info.createdAt,
      info.expiresAt,
      info.maxUses,
      MAX_LIVE_INVITES_PER_ADMIN,
    ]);
    return Number(created) === 1
      ? { ok: true, token, invite: info }
      : { ok: false, reason: "too_many_invites" };
  }

  async consumeInvite(token: string, now: number): Promise<ConsumeInviteResult> {
    const reply = list(await this.#run("use invite", CONSUME_INVITE, [hashToken(token), now]));
    if (reply[0] !== "ok") return { ok: false, reason: String(reply[0]) as InviteRefusal };
    return { ok: true, invite: toInvite(String(reply[1]), pairs(reply[2])) };
  }

  async revokeInvite(id: string, now: number): Promise<boolean> {
    return Number(await this.#run("revoke invite", REVOKE_INVITE, [id, now])) === 1;
  }

  async listInvites(): Promise<InviteInfo[]> {
    const reply = await this.#run("list invites", LIST_INVITES, []);
    return entries(reply).map((e) => toInvite(String(e[0]), pairs(e[1])));
  }

  async pruneInvites(now: number): Promise<number> {
    return Number(
      await this.#run("prune invites", PRUNE_INVITES, [
        now - DEAD_INVITE_KEEP_MS,
        MAX_PRUNED_INVITES_PER_CALL,
      ]),
    );
  }

  async createBootstrapToken(now: number): Promise<string | null> {
    const token = newToken();
    const stored = await this.#run("create bootstrap token", CREATE_BOOTSTRAP, [
      hashToken(token),
      now,
    ]);
    return Number(stored) === 1 ? token : null;
  }

  async useBootstrapToken(token: string, accountId: string): Promise<boolean> {
    const used = await this.#run("use bootstrap token", USE_BOOTSTRAP, [
      hashToken(token),
      accountId,
    ]);
    return Number(used) === 1;
  }

  /** Closes the connection; safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    await closeRedis(this.#client);
  }

  /** Runs a script with the prefix as ARGV[1]; "Cannot <action>: …" when closed. */
  #run(action: string, script: Script, args: (string | number)[]): Promise<unknown> {
    this.#checkOpen(action);
    return script.run(this.#client, [], [this.#prefix, ...args.map(String)]);
  }

  #checkOpen(action: string): void {
    if (this.#closed) throw new Error(`Cannot ${action}: the account store is closed`);
  }
}

/** A reply that must be a list; anything else is an empty one. */
function list(reply: unknown): unknown[] {
  return Array.isArray(reply) ? reply : [];
}

/** A reply that must be a list of lists, such as `{ id, fields }` per entry. */
function entries(reply: unknown): unknown[][] {
  return list(reply).filter(Array.isArray);
}

/** A flat HGETALL reply `[field, value, …]` as a record. */
function pairs(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}

function toAccount(id: string, f: Record<string, string>): Account {
  return {
    id,
    name: f.name ?? "",
    key: f.key ?? "",
    createdAt: Number(f.created),
    lastActiveAt: Number(f.active),
    passwordHash: f.pw ?? null,
    role: f.role === "admin" ? "admin" : "member",
    disabled: f.disabled === "1",
  };
}

function toSession(id: string, f: Record<string, string>): SessionInfo {
  return {
    id,
    accountId: f.account ?? "",
    device: f.device ?? "",
    createdAt: Number(f.created),
    lastSeenAt: Number(f.seen),
  };
}

function toInvite(id: string, f: Record<string, string>): InviteInfo {
  return {
    id,
    createdBy: f.by ?? "",
    createdAt: Number(f.created),
    expiresAt: Number(f.expires),
    maxUses: Number(f.max),
    uses: Number(f.uses),
    revokedAt: f.revoked === undefined || f.revoked === "" ? null : Number(f.revoked),
  };
}
