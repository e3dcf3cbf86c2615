/**
 * Cluster-wide presence in Redis: which instances are alive, which names are taken, and who is in
 * each room, across every server instance sharing one Redis.
 *
 * Layout (prefix `chat:` by default):
 * - `chat:instance:{id}` — "1" with a TTL (`ttlMs`), refreshed every `refreshMs`: the instance is
 *   alive while it exists. `chat:instances` lists every instance that registered.
 * - `chat:name:{key}` — `{instance id}\n{name}`: who holds a name (key: `nameKey` of the name).
 * - `chat:presence:{room}` — hash name → instance id; `chat:presence:rooms` — rooms with members.
 * - `chat:instance:{id}:names`, `chat:instance:{id}:members` (`{room}\n{name}`) — what each
 *   instance holds, so any instance can clean up after one that crashed.
 * - `chat:swept:{id}` — "1" for an hour after a sweep removed instance `id`: if it was only cut off,
 *   its write-back announces the members it restores (`onRestored`).
 *
 * Failure bound: an instance that crashes stops refreshing its key, which expires at most `ttlMs`
 * after the crash. From then on its users are left out of `members` and `rooms` and its names can
 * be claimed (every read checks that the holder is alive). Within `ttlMs + sweepMs` after the crash
 * some instance's sweep deletes the entries and reports them through `onExpired`, so that instance
 * can send the leave lines the dead one never sent. With the defaults: invisible within 10 s,
 * leave lines within 15 s.
 *
 * An instance cut off from Redis for longer than `ttlMs` is presumed dead by the others and swept.
 * When its refresh finds its key gone it writes back everything it holds; names taken by someone
 * else meanwhile are reported through `onNamesLost`. The same write-back follows any failed join,
 * leave, claim or release, so Redis matches this instance's mirror within one `refreshMs`. An
 * instance that starts with the id of an earlier run clears what that run left behind and
 * reports it through `onExpired`.
 *
 * Not for Redis Cluster: the scripts build keys of other instances as they go.
 */
import {
  closeRedis,
  connectRedis,
  type Redis,
  type RedisConnectionOptions,
  Script,
} from "./redis_client.ts";

/** How long an instance counts as alive after its last refresh, by default, in ms. */
export const PRESENCE_TTL_MS = 10_000;
/** How often an instance refreshes its key, by default, in ms; at most half of the TTL. */
export const PRESENCE_REFRESH_MS = 3_000;
/** How often each instance sweeps for dead ones, by default, in ms. */
export const PRESENCE_SWEEP_MS = 5_000;

/** Options for {@linkcode RedisPresence.connect}. */
export interface RedisPresenceOptions extends RedisConnectionOptions {
  /** `redis://[:password@]host:port[/db]`. */
  url: string;
  /** This instance's id, unique in the cluster: 1-64 of `A-Z a-z 0-9 _ . -`. */
  id: string;
  /** How long the instance counts as alive after its last refresh, in ms. @default 10000 */
  ttlMs?: number;
  /** How often the instance refreshes its key; must be well below `ttlMs`. @default 3000 */
  refreshMs?: number;
  /** How often the instance looks for dead instances to clean up, in ms. @default 5000 */
  sweepMs?: number;
  /** Prefix of every key, so several chats can share one Redis. @default "chat:" */
  prefix?: string;
  /** Members of dead instances this instance removed; send their leave lines. */
  onExpired?: (gone: ExpiredMember[]) => void;
  /** Name keys this instance held but another instance took while it was presumed dead. */
  onNamesLost?: (keys: string[]) => void;
  /**
   * Members this instance wrote back after another instance had swept them as dead and sent their
   * leave lines (this one was only cut off): the others should hear them join again.
   */
  onRestored?: (members: { room: string; name: string }[]) => void;
}

/** A room member removed because its instance stopped refreshing. */
export interface ExpiredMember {
  instance: string;
  room: string;
  name: string;
}

/** Who holds a name. */
export interface NameOwner {
  instance: string;
  /** The name as its owner registered it. */
  name: string;
}

const ID_PATTERN = /^[A-Za-z0-9_.\-]{1,64}$/;

// Every script gets the key prefix as ARGV[1] and this instance's id as ARGV[2].
const LIB = `
local p = ARGV[1]
local me = ARGV[2]
local function alive(id) return redis.call('EXISTS', p .. 'instance:' .. id) == 1 end
local function owner(v) return string.match(v, '^([^\\n]*)') end
-- Claims name key k for me unless a live other instance holds it; returns 1 or 0.
local function claim(k, name)
  local v = redis.call('GET', p .. 'name:' .. k)
  if v and owner(v) ~= me and alive(owner(v)) then return 0 end
  redis.call('SET', p .. 'name:' .. k, me .. '\\n' .. name)
  redis.call('SADD', p .. 'instance:' .. me .. ':names', k)
  return 1
end
local function join(room, name)
  redis.call('HSET', p .. 'presence:' .. room, name, me)
  redis.call('SADD', p .. 'instance:' .. me .. ':members', room .. '\\n' .. name)
  redis.call('SADD', p .. 'presence:rooms', room)
end
-- Removes membership entry ("room\\nname") from its room's presence if instance id still holds it
-- there (another instance may have taken the name since), appending id, room, name to out.
local function drop(id, entry, out)
  local room, name = string.match(entry, '^([^\\n]*)\\n(.*)$')
  local h = p .. 'presence:' .. room
  if redis.call('HGET', h, name) ~= id then return end
  redis.call('HDEL', h, name)
  out[#out + 1] = id
  out[#out + 1] = room
  out[#out + 1] = name
  if redis.call('HLEN', h) == 0 then redis.call('SREM', p .. 'presence:rooms', room) end
end
-- Removes what instance id holds (memberships and names not since taken by another instance),
-- appending instance, room, name triples of the removed members to gone.
local function cleanup(id, gone)
  local ms = p .. 'instance:' .. id .. ':members'
  for _, m in ipairs(redis.call('SMEMBERS', ms)) do drop(id, m, gone) end
  local ns = p .. 'instance:' .. id .. ':names'
  for _, k in ipairs(redis.call('SMEMBERS', ns)) do
    local v = redis.call('GET', p .. 'name:' .. k)
    if v and owner(v) == id then redis.call('DEL', p .. 'name:' .. k) end
  end
  redis.call('DEL', ms, ns)
  redis.call('SREM', p .. 'instances', id)
end
`;

// ARGV[3]: name key, ARGV[4]: name.
const CLAIM = new Script(LIB + `return claim(ARGV[3], ARGV[4])`);

// ARGV[3]: name key. Deletes the claim only if it is mine.
const RELEASE = new Script(
  LIB + `
local v = redis.call('GET', p .. 'name:' .. ARGV[3])
if v and owner(v) == me then redis.call('DEL', p .. 'name:' .. ARGV[3]) end
redis.call('SREM', p .. 'instance:' .. me .. ':names', ARGV[3])
return 1
`,
);

// ARGV[3]: name key. Returns { instance, name } or nil when free or held by a dead instance.
const OWNER = new Script(
  LIB + `
local v = redis.call('GET', p .. 'name:' .. ARGV[3])
if not v or not alive(owner(v)) then return nil end
return { owner(v), string.sub(v, #owner(v) + 2) }
`,
);

// ARGV[3]: room, ARGV[4]: name.
const JOIN = new Script(LIB + `join(ARGV[3], ARGV[4]) return 1`);

// ARGV[3]: room, ARGV[4]: name. Removes the membership only if it is mine.
const LEAVE = new Script(
  LIB + `
local h = p .. 'presence:' .. ARGV[3]
if redis.call('HGET', h, ARGV[4]) == me then redis.call('HDEL', h, ARGV[4]) end
redis.call('SREM', p .. 'instance:' .. me .. ':members', ARGV[3] .. '\\n' .. ARGV[4])
if redis.call('HLEN', h) == 0 then redis.call('SREM', p .. 'presence:rooms', ARGV[3]) end
return 1
`,
);

// ARGV[3]: a sender's name key, ARGV[4]: a channel, ARGV[5]: a message. Publishes the message only
// while this instance holds the name, in one atomic step: 1, or 0 when it no longer does.
const PUBLISH_AS = new Script(
  LIB + `
local v = redis.call('GET', p .. 'name:' .. ARGV[3])
if not v or owner(v) ~= me then return 0 end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`,
);

// ARGV[3]: room. The names in the room whose instance is alive.
const MEMBERS = new Script(
  LIB + `
local h = redis.call('HGETALL', p .. 'presence:' .. ARGV[3])
local seen = {}
local out = {}
for i = 1, #h, 2 do
  local id = h[i + 1]
  if seen[id] == nil then seen[id] = alive(id) end
  if seen[id] then out[#out + 1] = h[i] end
end
return out
`,
);

// Flat list: room, live member count, room, count, ... for every room with a live member.
const ROOMS = new Script(
  LIB + `
local seen = {}
local out = {}
for _, room in ipairs(redis.call('SMEMBERS', p .. 'presence:rooms')) do
  local h = redis.call('HGETALL', p .. 'presence:' .. room)
  local n = 0
  for i = 2, #h, 2 do
    local id = h[i]
    if seen[id] == nil then seen[id] = alive(id) end
    if seen[id] then n = n + 1 end
  end
  if n > 0 then
    out[#out + 1] = room
    out[#out + 1] = n
  end
end
return out
`,
);

// ARGV[3]: ttl ms. Refreshes my key; returns 1, or 0 when it had expired (nothing refreshed).
const REFRESH = new Script(
  LIB + `
if redis.call('SET', p .. 'instance:' .. me, '1', 'PX', ARGV[3], 'XX') then return 1 end
return 0
`,
);

// ARGV[3]: ttl ms, ARGV[4]: member count m, then m (room, name) pairs, then (name key, name) pairs.
// Makes Redis hold exactly what is given for this instance: memberships and names not given are
// removed, the given ones written where no other live instance holds them (a user who moved to
// another instance while this one was presumed dead stays theirs). Returns { name keys another
// live instance holds, instance/room/name triples removed and not given, room/name pairs written
// back after another instance's sweep had removed them and sent their leave lines }.
const REGISTER = new Script(
  LIB + `
redis.call('SET', p .. 'instance:' .. me, '1', 'PX', ARGV[3])
redis.call('SADD', p .. 'instances', me)
local m = tonumber(ARGV[4])
local keep = {}
for i = 5, 4 + 2 * m, 2 do keep[ARGV[i] .. '\\n' .. ARGV[i + 1]] = true end
local removed = {}
local ms = p .. 'instance:' .. me .. ':members'
for _, entry in ipairs(redis.call('SMEMBERS', ms)) do
  if not keep[entry] then
    drop(me, entry, removed)
    redis.call('SREM', ms, entry)
  end
end
local swept = redis.call('DEL', p .. 'swept:' .. me) == 1
local restored = {}
for i = 5, 4 + 2 * m, 2 do
  local held = redis.call('HGET', p .. 'presence:' .. ARGV[i], ARGV[i + 1])
  if held == me or not held or not alive(held) then
    join(ARGV[i], ARGV[i + 1])
    if swept and held ~= me then
      restored[#restored + 1] = ARGV[i]
      restored[#restored + 1] = ARGV[i + 1]
    end
  end
end
local want = {}
for i = 5 + 2 * m, #ARGV, 2 do want[ARGV[i]] = true end
local ns = p .. 'instance:' .. me .. ':names'
for _, k in ipairs(redis.call('SMEMBERS', ns)) do
  if not want[k] then
    local v = redis.call('GET', p .. 'name:' .. k)
    if v and owner(v) == me then redis.call('DEL', p .. 'name:' .. k) end
    redis.call('SREM', ns, k)
  end
end
local lost = {}
for i = 5 + 2 * m, #ARGV, 2 do
  if claim(ARGV[i], ARGV[i + 1]) == 0 then lost[#lost + 1] = ARGV[i] end
end
return { lost, removed, restored }
`,
);

// Removes every dead instance's members and names; returns instance, room, name triples.
const SWEEP = new Script(
  LIB + `
local gone = {}
for _, id in ipairs(redis.call('SMEMBERS', p .. 'instances')) do
  if not alive(id) then
    cleanup(id, gone)
    -- If it was only cut off, its write-back must announce its members again (see REGISTER).
    redis.call('SET', p .. 'swept:' .. id, '1', 'PX', 3600000) -- an hour
  end
end
return gone
`,
);

// Removes everything I hold, for a clean shutdown: my users are gone at once, not after the TTL.
const UNREGISTER = new Script(
  LIB + `
redis.call('DEL', p .. 'instance:' .. me)
cleanup(me, {})
return 1
`,
);

/**
 * This instance's view of cluster presence; it keeps its own registration alive with a timer and
 * mirrors what it holds, so it can write it back after Redis lost it.
 */
export class RedisPresence {
  readonly id: string;
  #client: Redis;
  #prefix: string;
  #ttlMs: number;
  #onExpired: (gone: ExpiredMember[]) => void;
  #onNamesLost: (keys: string[]) => void;
  #onRestored: (members: { room: string; name: string }[]) => void;
  /** name key → name, for what this instance holds. */
  #names = new Map<string, string>();
  /** name key → name, for claims sent and not yet answered. */
  #claiming = new Map<string, string>();
  /** room → names of this instance's members there. */
  #members = new Map<string, Set<string>>();
  #refreshTimer: ReturnType<typeof setInterval>;
  #sweepTimer: ReturnType<typeof setInterval>;
  #refreshing = false;
  #sweeping = false;
  /** A write failed, so Redis may differ from the mirror: the next refresh rewrites everything. */
  #dirty = false;
  #closed = false;

  private constructor(client: Redis, options: RedisPresenceOptions) {
    this.id = options.id;
    this.#client = client;
    this.#prefix = options.prefix ?? "chat:";
    this.#ttlMs = options.ttlMs ?? PRESENCE_TTL_MS;
    this.#onExpired = options.onExpired ?? (() => {});
    this.#onNamesLost = options.onNamesLost ?? (() => {});
    this.#onRestored = options.onRestored ?? (() => {});
    this.#refreshTimer = setInterval(
      () => void this.refresh(),
      options.refreshMs ?? PRESENCE_REFRESH_MS,
    );
    this.#sweepTimer = setInterval(
      () => void this.sweep().catch(() => {}),
      options.sweepMs ?? PRESENCE_SWEEP_MS,
    );
    // After a reconnect, refresh at once: Redis may have restarted empty.
    client.on("ready", () => void this.refresh());
  }

  /**
   * Connects and registers this instance; rejects when Redis is unreachable or the options are bad.
   *
   * @example
   * ```ts ignore
   * const presence = await RedisPresence.connect({ url: "redis://127.0.0.1:6379", id: "a1" });
   * if (await presence.claimName("alice", "Alice")) await presence.join("general", "Alice");
   * console.log(await presence.members("general"));
   * await presence.close();
   * ```
   */
  static async connect(options: RedisPresenceOptions): Promise<RedisPresence> {
    if (!ID_PATTERN.test(options.id)) {
      throw new Error("Cannot start presence: id must be 1-64 of A-Z a-z 0-9 _ . -");
    }
    const ttl = options.ttlMs ?? PRESENCE_TTL_MS;
    if ((options.refreshMs ?? PRESENCE_REFRESH_MS) * 2 > ttl) {
      throw new Error("Cannot start presence: refreshMs must be at most half of ttlMs");
    }
    const client = await connectRedis(options.url, options);
    let reply: unknown;
    try {
      // Registering with nothing also clears what an earlier run with this id left behind.
      reply = await REGISTER.run(client, [], [options.prefix ?? "chat:", options.id, ttl, 0]);
    } catch (e) {
      await closeRedis(client);
      throw e;
    }
    const presence = new RedisPresence(client, options);
    const stale = triples(Array.isArray(reply) ? reply[1] : undefined);
    if (stale.length > 0) presence.#onExpired(stale);
    return presence;
  }

  /**
   * Takes a name key for this instance; true when it is now held here (also when it already was),
   * false when another live instance holds it.
   */
  async claimName(key: string, name: string): Promise<boolean> {
    // A refresh sent while this claim is on its way must not release it.
    this.#claiming.set(key, name);
    try {
      const ok = Number(await this.#write(CLAIM, key, name)) === 1;
      if (ok) this.#names.set(key, name);
      return ok;
    } finally {
      this.#claiming.delete(key);
    }
  }

  /** Gives a name key back, if this instance holds it. */
  async releaseName(key: string): Promise<void> {
    this.#names.delete(key);
    await this.#write(RELEASE, key);
  }

  /**
   * Publishes `message` on `channel` only while this instance holds the name key `from`; false
   * (nothing published) when it no longer does: it was cut off or frozen and the name was freed.
   */
  async publishAs(from: string, channel: string, message: string): Promise<boolean> {
    return Number(await this.#run(PUBLISH_AS, from, channel, message)) === 1;
  }

  /** Who holds a name key now, or null when nobody alive does. */
  async ownerOf(key: string): Promise<NameOwner | null> {
    const reply = await this.#run(OWNER, key);
    if (!Array.isArray(reply) || reply.length !== 2) return null;
    return { instance: String(reply[0]), name: String(reply[1]) };
  }

  /** Records that `name`, a user of this instance, is in `room`. */
  async join(room: string, name: string): Promise<void> {
    let names = this.#members.get(room);
    if (names === undefined) this.#members.set(room, names = new Set());
    names.add(name);
    await this.#write(JOIN, room, name);
  }

  /** Records that `name` left `room` (or disconnected). */
  async leave(room: string, name: string): Promise<void> {
    const names = this.#members.get(room);
    names?.delete(name);
    if (names?.size === 0) this.#members.delete(room);
    await this.#write(LEAVE, room, name);
  }

  /** The names in `room` on every live instance, in no particular order. */
  async members(room: string): Promise<string[]> {
    const reply = await this.#run(MEMBERS, room);
    return Array.isArray(reply) ? reply.map(String) : [];
  }

  /** Every room with a member on a live instance, with its member count. */
  async rooms(): Promise<{ room: string; members: number }[]> {
    const reply = await this.#run(ROOMS);
    const out: { room: string; members: number }[] = [];
    if (!Array.isArray(reply)) return out;
    for (let i = 0; i + 1 < reply.length; i += 2) {
      out.push({ room: String(reply[i]), members: Number(reply[i + 1]) });
    }
    return out;
  }

  /**
   * Refreshes this instance's key; when the key had expired (this instance was presumed dead, or
   * Redis restarted empty) or a write had failed, makes Redis hold exactly what this instance
   * holds. Runs on a timer and after every reconnect; public so tests can force one. Never rejects.
   */
  async refresh(): Promise<void> {
    if (this.#refreshing || this.#closed) return;
    this.#refreshing = true;
    try {
      if (!this.#dirty && Number(await this.#run(REFRESH, this.#ttlMs)) === 1) return;
      this.#dirty = false;
      // The snapshot is taken and sent in one go (no await between), so it is ordered correctly
      // against every join, leave, claim and release sent on this connection before or after.
      const args: (string | number)[] = [this.#ttlMs, 0];
      let m = 0;
      for (const [room, names] of this.#members) {
        for (const name of names) args.push(room, name), m++;
      }
      args[1] = m;
      for (const [key, name] of new Map([...this.#names, ...this.#claiming])) args.push(key, name);
      const reply = await this.#run(REGISTER, ...args);
      // Replies come in send order, so a claim sent before this refresh is settled by now; a
      // refused one is no loss.
      const lost = (Array.isArray(reply) && Array.isArray(reply[0]) ? reply[0].map(String) : [])
        .filter((k) => this.#names.has(k));
      if (lost.length > 0) {
        for (const k of lost) this.#names.delete(k);
        this.#onNamesLost(lost);
      }
      const back = Array.isArray(reply) && Array.isArray(reply[2]) ? reply[2].map(String) : [];
      const restored: { room: string; name: string }[] = [];
      for (let i = 0; i + 1 < back.length; i += 2) {
        restored.push({ room: back[i], name: back[i + 1] });
      }
      if (restored.length > 0) this.#onRestored(restored);
    } catch {
      // Redis is unreachable: the next tick or the reconnect tries again, rewriting everything.
      this.#dirty = true;
    } finally {
      this.#refreshing = false;
    }
  }

  /**
   * Removes the members and names of dead instances and reports the members through `onExpired`.
   * Runs on a timer; public so tests can force one. Resolves with how many members it removed.
   */
  async sweep(): Promise<number> {
    if (this.#sweeping || this.#closed) return 0;
    this.#sweeping = true;
    try {
      const gone = triples(await this.#run(SWEEP));
      if (gone.length > 0) this.#onExpired(gone);
      return gone.length;
    } finally {
      this.#sweeping = false;
    }
  }

  /**
   * Stops the timers and, when `unregister` (the default), removes this instance, its members and
   * its names from Redis at once (a clean shutdown); safe to call twice.
   */
  async close(options: { unregister?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#refreshTimer);
    clearInterval(this.#sweepTimer);
    if (options.unregister ?? true) await this.#run(UNREGISTER).catch(() => {});
    await closeRedis(this.#client);
  }

  #run(script: Script, ...args: (string | number)[]): Promise<unknown> {
    return script.run(this.#client, [], [this.#prefix, this.id, ...args]);
  }

  /** Runs a script that changes what this instance holds; a failure marks the mirror dirty. */
  async #write(script: Script, ...args: (string | number)[]): Promise<unknown> {
    try {
      return await this.#run(script, ...args);
    } catch (e) {
      // It may or may not have run: the next refresh makes Redis match the mirror either way.
      this.#dirty = true;
      throw e;
    }
  }
}

/** Reads a flat instance, room, name, ... reply. */
function triples(reply: unknown): ExpiredMember[] {
  const out: ExpiredMember[] = [];
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 2 < reply.length; i += 3) {
    out.push({
      instance: String(reply[i]),
      room: String(reply[i + 1]),
      name: String(reply[i + 2]),
    });
  }
  return out;
}
