/**
 * A {@linkcode Store} in Redis, so several server instances share one history and one seq per room.
 *
 * Layout (prefix `chat:` by default):
 * - `chat:room:{room}:stream` — a Redis Stream, one entry per message, id `<seq>-0`, fields
 *   `from`, `text`, `ts` and, when present, `cid`.
 * - `chat:room:{room}:seq` — the highest seq ever issued in the room (never reset, even when
 *   retention empties the stream).
 * - `chat:rooms` — every room that ever stored a message, for `prune` and `recentWithCid`.
 *
 * `append` sends the whole batch as ONE Lua script: it allocates the seqs and adds the entries in
 * one atomic step, so two instances never issue the same seq, a crash can't leave a seq issued
 * but unstored, and the batch costs one round trip. Stream ids must rise, so `<seq>-0` entries
 * are kept in seq order by Redis itself. Redis does not roll a failed script back, so the script
 * leaves itself no way to fail halfway: Redis refuses it as a whole when over maxmemory (see the
 * shebang), and it never issues a seq at or below the stream's last generated id, so no XADD can
 * be refused for its id, even if the seq key was lost.
 *
 * Retention: `maxMessagesPerRoom` trims exactly (`XADD MAXLEN n`, not `~`) because the Store
 * promises "at most"; trimming one entry per append costs little. `maxAgeMs` is applied by
 * `prune`, which removes entries from the oldest while their ts is below the cutoff, as
 * MemoryStore does (an entry stamped after a clock step back waits for the ones before it), and
 * examines at most PRUNE_SCAN_LIMIT entries per room per call.
 *
 * When Redis is unreachable every method rejects at once (see redis_client.ts); when it does not
 * answer within the command timeout the method rejects although the command may still run. An
 * append rejected that way may therefore have been stored: the network makes that unknowable.
 *
 * Needs Redis 7.0 or later (script flags; XTRIM MINID and exclusive ranges came in 6.2); not
 * Redis Cluster (a batch touches keys of several rooms).
 */
import { type ChatMessage, nameKey, RESEND_WINDOW_MS } from "../protocol/protocol.ts";
import {
  closeRedis,
  connectRedis,
  type Redis,
  type RedisConnectionOptions,
  Script,
} from "./redis_client.ts";
import type {
  Appended,
  NewMessage,
  ReadRange,
  Refused,
  RetentionPolicy,
  RoomBounds,
  Store,
} from "../store/store.ts";

/** Most stream entries one `prune` examines per room; the rest wait for the next prune. */
export const PRUNE_SCAN_LIMIT = 10_000;
/** Most stream entries `recentWithCid` examines per room, newest first. */
export const RECENT_SCAN_LIMIT = 10_000;

/** Options for {@linkcode RedisStore.connect}. */
export interface RedisStoreOptions extends RedisConnectionOptions {
  /** `redis://[:password@]host:port[/db]`. */
  url: string;
  /** @default {} (keep everything) */
  retention?: RetentionPolicy;
  /** Prefix of every key, so several chats can share one Redis. @default "chat:" */
  prefix?: string;
  /**
   * This instance's id in the cluster (its presence records, redis_presence.ts, under the same
   * prefix): a message is stored only while its sender's name is held by this instance, so an
   * instance that was frozen or cut off never posts for a name someone else holds now.
   * @default no check
   */
  fence?: string;
}

// The highest seq a room has issued: its seq key, or the stream's last generated id if that is
// higher (the stream remembers it even when retention emptied it), so losing either key is safe.
const LATEST_FN = `
local function latest(seqKey, streamKey)
  local cur = tonumber(redis.call('GET', seqKey) or '0')
  if redis.call('EXISTS', streamKey) == 1 then
    local info = redis.call('XINFO', 'STREAM', streamKey)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        local top = tonumber(string.match(info[i + 1], '^(%d+)'))
        if top > cur then cur = top end
      end
    end
  end
  return cur
end
`;

// KEYS: the rooms set, then a (seq key, stream key) pair per distinct room of the batch, then one
// resend key per message that has a cid.
// ARGV: maxlen (0: none), resend window in ms, room count, the room names, then 7 fields per
// message: room index (1-based), from, text, ts, has cid ("1"/"0"), cid, resend key index in KEYS
// (0: none).
// Returns, in batch order, "seq" for a stored message, or "seq:ts" of the original when the same
// name already sent that cid in that room within the window: such a resend is not stored again,
// whichever instance accepted the original (the guard lives here, not in one hub's memory).
// With a fence (ARGV[4], this instance's id), a message whose sender's name record
// (`name:{key}`, `{id}\n{name}`) is missing or names another instance is not stored: "!unheld"
// or "!elsewhere". The check and the append are one atomic step, so an instance frozen between
// them cannot slip a message in after its name was taken.
// The shebang makes this a flagged script (Redis 7), which Redis refuses up front when it is over
// maxmemory, instead of letting it fail at some XADD in the middle of a batch.
const APPEND = new Script(
  "#!lua\n" + LATEST_FN + `
local maxlen = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local nrooms = tonumber(ARGV[3])
local fence = ARGV[4]
local nextSeq = {}
for r = 1, nrooms do nextSeq[r] = latest(KEYS[2 * r], KEYS[2 * r + 1]) end
local seqs = {}
local first = 5 + nrooms
for b = first, #ARGV, 8 do
  local r = tonumber(ARGV[b])
  local ck = tonumber(ARGV[b + 6])
  local nk = tonumber(ARGV[b + 7])
  local refused = false
  if nk > 0 then
    local holder = redis.call('GET', KEYS[nk])
    if not holder then refused = '!unheld'
    elseif string.match(holder, '^[^\\n]*') ~= fence then refused = '!elsewhere' end
  end
  local prev = false
  if not refused and ck > 0 then prev = redis.call('GET', KEYS[ck]) end
  if refused then
    seqs[#seqs + 1] = refused
  elseif prev then
    seqs[#seqs + 1] = prev
  else
  local seq = nextSeq[r] + 1
  nextSeq[r] = seq
  local cmd = { 'XADD', KEYS[2 * r + 1] }
  if maxlen > 0 then
    cmd[#cmd + 1] = 'MAXLEN'
    cmd[#cmd + 1] = maxlen
  end
  cmd[#cmd + 1] = string.format('%d-0', seq)
  cmd[#cmd + 1] = 'from'
  cmd[#cmd + 1] = ARGV[b + 1]
  cmd[#cmd + 1] = 'text'
  cmd[#cmd + 1] = ARGV[b + 2]
  cmd[#cmd + 1] = 'ts'
  cmd[#cmd + 1] = ARGV[b + 3]
  if ARGV[b + 4] == '1' then
    cmd[#cmd + 1] = 'cid'
    cmd[#cmd + 1] = ARGV[b + 5]
  end
  redis.call(unpack(cmd))
  if ck > 0 then
    redis.call('SET', KEYS[ck], string.format('%d:%s', seq, ARGV[b + 3]), 'PX', window)
  end
  seqs[#seqs + 1] = string.format('%d', seq)
  end
end
for r = 1, nrooms do
  redis.call('SET', KEYS[2 * r], string.format('%d', nextSeq[r]))
  redis.call('SADD', KEYS[1], ARGV[4 + r])
end
return seqs
`,
);

// KEYS: seq key, stream key. Returns { oldest, latest } as one atomic snapshot.
const BOUNDS = new Script(
  LATEST_FN + `
local newest = latest(KEYS[1], KEYS[2])
local bottom = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local oldest = newest + 1
if bottom[1] then oldest = tonumber(string.match(bottom[1][1], '^(%d+)')) end
return { oldest, newest }
`,
);

// Shared by the two scans below: the value of field `name` in a flat field list.
const FIELD_FN = `
local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end
`;

// KEYS: stream key. ARGV: cutoff ts, scan limit. Removes entries from the oldest while their ts
// is below the cutoff (as MemoryStore does); returns how many it removed.
const PRUNE = new Script(
  FIELD_FN + `
local cutoff = tonumber(ARGV[1])
local left = tonumber(ARGV[2])
local start = '-'
local lastOld = nil
local done = false
while not done and left > 0 do
  local batch = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', math.min(left, 100))
  if #batch == 0 then break end
  for _, e in ipairs(batch) do
    if tonumber(field(e[2], 'ts')) >= cutoff then
      done = true
      break
    end
    lastOld = e[1]
    left = left - 1
  end
  start = '(' .. batch[#batch][1]
end
if lastOld == nil then return 0 end
local seq = tonumber(string.match(lastOld, '^(%d+)'))
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', seq + 1))
`,
);

// KEYS: stream key. ARGV: since ts, scan limit. Returns the entries carrying a cid, newest first,
// walking back from the newest entry until one is older than `since`.
const RECENT_WITH_CID = new Script(
  FIELD_FN + `
local since = tonumber(ARGV[1])
local left = tonumber(ARGV[2])
local out = {}
local cursor = '+'
while left > 0 do
  local batch = redis.call('XREVRANGE', KEYS[1], cursor, '-', 'COUNT', math.min(left, 100))
  if #batch == 0 then break end
  for _, e in ipairs(batch) do
    if tonumber(field(e[2], 'ts')) < since then return out end
    if field(e[2], 'cid') then out[#out + 1] = e end
    left = left - 1
  end
  cursor = '(' .. batch[#batch][1]
end
return out
`,
);

/** Stores room history in Redis Streams; shared by every instance connected to the same Redis. */
export class RedisStore implements Store {
  #client: Redis;
  #retention: RetentionPolicy;
  #prefix: string;
  #fence: string | undefined;
  #closed = false;

  private constructor(client: Redis, options: RedisStoreOptions) {
    this.#client = client;
    this.#retention = options.retention ?? {};
    this.#prefix = options.prefix ?? "chat:";
    this.#fence = options.fence;
  }

  /**
   * Connects to Redis; rejects when the first connection attempt fails.
   *
   * @example
   * ```ts ignore
   * const store = await RedisStore.connect({ url: "redis://127.0.0.1:6379" });
   * const [m] = await store.append([{ room: "general", from: "alice", text: "hi", ts: Date.now() }]);
   * await store.close();
   * ```
   */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    return new RedisStore(await connectRedis(options.url, options), options);
  }

  async append(batch: readonly NewMessage[]): Promise<Appended[]> {
    this.#checkOpen("append");
    if (batch.length === 0) return [];
    const roomIndex = new Map<string, number>();
    for (const m of batch) if (!roomIndex.has(m.room)) roomIndex.set(m.room, roomIndex.size + 1);
    const keys = [this.#key("rooms")];
    for (const room of roomIndex.keys()) keys.push(this.#seqKey(room), this.#streamKey(room));
    const args: (string | number)[] = [
      this.#retention.maxMessagesPerRoom ?? 0,
      RESEND_WINDOW_MS,
      roomIndex.size,
      this.#fence ?? "",
      ...roomIndex.keys(),
    ];
    for (const m of batch) {
      let resendKey = 0, holderKey = 0;
      if (m.cid !== undefined) {
        keys.push(this.#key(`cid:${m.room}:${nameKey(m.from)}:${m.cid}`));
        resendKey = keys.length;
      }
      if (this.#fence !== undefined) {
        keys.push(this.#key(`name:${nameKey(m.from)}`));
        holderKey = keys.length;
      }
      args.push(
        roomIndex.get(m.room)!,
        m.from,
        m.text,
        m.ts,
        m.cid === undefined ? "0" : "1",
        m.cid ?? "",
        resendKey,
        holderKey,
      );
    }
    const replies = await APPEND.run(this.#client, keys, args);
    if (!Array.isArray(replies) || replies.length !== batch.length) {
      throw new Error("Cannot append: Redis answered the append script with an unexpected reply");
    }
    return batch.map((m, i): Appended => {
      // "seq" for a new message, "seq:ts" for the original of a resend, "!why" for a refusal.
      const reply = String(replies[i]);
      if (reply === "!elsewhere" || reply === "!unheld") {
        return { refused: reply.slice(1) as Refused["refused"] };
      }
      const [seq, originalTs] = reply.split(":");
      const stored: ChatMessage = {
        room: m.room,
        seq: Number(seq),
        from: m.from,
        text: m.text,
        ts: originalTs === undefined ? m.ts : Number(originalTs),
      };
      if (m.cid !== undefined) stored.cid = m.cid;
      return stored;
    });
  }

  async read(room: string, range: ReadRange): Promise<ChatMessage[]> {
    this.#checkOpen("read");
    if (range.limit < 1) return []; // COUNT 0 would mean "no limit" to Redis
    const key = this.#streamKey(room);
    // Entry ids are `<seq>-0`, so seq bounds map straight onto (inclusive) id bounds.
    const lo = range.after === undefined ? 1 : range.after + 1;
    const hi = range.before === undefined ? Infinity : range.before - 1;
    if (hi < lo) return [];
    const start = range.after === undefined ? "-" : `${lo}-0`;
    const end = hi === Infinity ? "+" : `${hi}-0`;
    const fromNewest = range.after === undefined &&
      (range.before !== undefined || range.newest === true);
    if (fromNewest) {
      const entries = await this.#client.xrevrange(key, end, start, "COUNT", range.limit);
      return entries.map((e) => toMessage(room, e)).reverse();
    }
    const entries = await this.#client.xrange(key, start, end, "COUNT", range.limit);
    return entries.map((e) => toMessage(room, e));
  }

  async bounds(room: string): Promise<RoomBounds> {
    this.#checkOpen("read bounds");
    const reply = await BOUNDS.run(this.#client, [this.#seqKey(room), this.#streamKey(room)], []);
    if (!Array.isArray(reply) || reply.length !== 2) {
      throw new Error("Cannot read bounds: Redis answered with an unexpected reply");
    }
    return { oldest: Number(reply[0]), latest: Number(reply[1]) };
  }

  async recentWithCid(sinceTs: number): Promise<ChatMessage[]> {
    this.#checkOpen("read recent messages");
    const rooms = await this.#client.smembers(this.#key("rooms"));
    // All scripts are written before any answer is awaited: one round trip for every room.
    const replies = await Promise.all(
      rooms.map((room) =>
        RECENT_WITH_CID.run(this.#client, [this.#streamKey(room)], [sinceTs, RECENT_SCAN_LIMIT])
      ),
    );
    const out: ChatMessage[] = [];
    rooms.forEach((room, i) => {
      const entries = replies[i];
      if (!Array.isArray(entries)) return;
      for (let j = entries.length - 1; j >= 0; j--) out.push(toMessage(room, entries[j]));
    });
    return out.sort((a, b) => a.ts - b.ts);
  }

  async prune(now: number): Promise<number> {
    this.#checkOpen("prune");
    const maxAge = this.#retention.maxAgeMs;
    if (maxAge === undefined) return 0;
    const rooms = await this.#client.smembers(this.#key("rooms"));
    const removed = await Promise.all(
      rooms.map((room) =>
        PRUNE.run(this.#client, [this.#streamKey(room)], [now - maxAge, PRUNE_SCAN_LIMIT])
      ),
    );
    return removed.reduce<number>((sum, n) => sum + Number(n), 0);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await closeRedis(this.#client);
  }

  /** True once close was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #checkOpen(action: string): void {
    if (this.#closed) throw new Error(`Cannot ${action}: the store is closed`);
  }

  #key(name: string): string {
    return this.#prefix + name;
  }

  #seqKey(room: string): string {
    return `${this.#prefix}room:${room}:seq`;
  }

  #streamKey(room: string): string {
    return `${this.#prefix}room:${room}:stream`;
  }
}

/** Turns a stream entry `[id, [field, value, ...]]` of `room` into a message. */
function toMessage(room: string, entry: unknown): ChatMessage {
  if (!Array.isArray(entry) || typeof entry[0] !== "string" || !Array.isArray(entry[1])) {
    throw new Error(`Cannot read room ${room}: a stream entry is malformed`);
  }
  const fields: unknown[] = entry[1];
  const m: ChatMessage = { room, seq: parseInt(entry[0], 10), from: "", text: "", ts: 0 };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = String(fields[i + 1]);
    switch (fields[i]) {
      case "from":
        m.from = value;
        break;
      case "text":
        m.text = value;
        break;
      case "ts":
        m.ts = Number(value);
        break;
      case "cid":
        m.cid = value;
        break;
    }
  }
  return m;
}
