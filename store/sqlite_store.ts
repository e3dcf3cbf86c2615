/**
 * The durable history store: room messages in one SQLite file through the runtime's `node:sqlite`.
 *
 * Ownership: one process owns the file. The store caches each room's latest seq in memory and
 * allocates seqs from that cache, so a second writer on the same file would make appends fail on
 * the (room, seq) primary key (nothing would be overwritten, but nothing would be stored either).
 * `open` therefore takes an exclusive advisory lock on the file (see {@linkcode lockDataFile}) and
 * throws {@linkcode StoreInUseError} when another store holds it.
 *
 * Damage: when SQLite reports the file damaged (SQLITE_CORRUPT), a call throws
 * {@linkcode DamagedStoreError}, which names the file and what to do, and `onDamaged` hears of it
 * once per room, so a room whose pages are damaged is reported once, not once per request.
 *
 * Invariant: every deletion removes a prefix of a room's seqs, so what a room holds is always the
 * dense range `oldest..latest` with no gaps, and `bounds().oldest` alone tells a client whether
 * history was truncated below the seq it resumes from. The `rooms` table remembers each room's
 * latest seq, so seqs never go backwards even after retention removed every message of a room.
 *
 * Accounts: `accounts()` opens the account tables (store/sqlite_accounts.ts) in this same file, on
 * this connection and under this lock, so one file and one backup hold everything.
 *
 * Every method is synchronous and bounded: `append` is one transaction, `prune` deletes at most
 * `pruneChunkRows` rows per call. Deno permissions: `--allow-read=<file>` and
 * `--allow-write=<file>` for the data file alone; SQLite creates `<file>-wal` and `<file>-shm`
 * itself, outside Deno's permission checks.
 *
 * @example
 * ```ts
 * import { SqliteStore } from "./sqlite_store.ts";
 * const store = SqliteStore.open(":memory:", { retention: { maxMessagesPerRoom: 10_000 } });
 * const [m] = store.append([{ room: "lobby", from: "Ann", text: "hi", ts: Date.now() }]);
 * console.log(m.seq); // 1
 * store.close();
 * ```
 */
import { backup, DatabaseSync, type SQLOutputValue, type StatementSync } from "node:sqlite";
import { type ChatMessage, nameKey } from "../protocol/protocol.ts";
import type { NewMessage, ReadRange, RetentionPolicy, RoomBounds, Store } from "./store.ts";
import { SqliteAccountStore } from "./sqlite_accounts.ts";

/**
 * Default most rows one `prune` call deletes, so one call never stalls the event loop for long:
 * about 5 ms per 1000 rows of ~200-byte messages on a 2-core VM with an SSD (bench/store_bench.ts).
 */
export const DEFAULT_PRUNE_CHUNK_ROWS = 1000;
/** Default longest wait for another connection's lock, in ms; the event loop stalls meanwhile. */
export const DEFAULT_BUSY_TIMEOUT_MS = 1000;
/** Size the WAL file is cut back to after a checkpoint, in bytes, so one burst does not pin disk. */
export const JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
/** Rows `PRAGMA optimize` may sample per index on close, so closing a large file stays quick. */
const ANALYSIS_LIMIT_ROWS = 1000;
/**
 * Most distinct rooms `onDamaged` is told about; past this, damage goes unreported (every failed
 * call still throws). Client-chosen room names can reach damaged pages, so the set needs a bound.
 */
export const MAX_DAMAGED_ROOMS_REPORTED = 100;
/** SQLite's primary result code for a damaged file (extended codes keep it in the low byte). */
const SQLITE_CORRUPT = 11;
/** `sqlite3_errstr(SQLITE_CORRUPT)`, unchanged since SQLite 3.0. */
const SQLITE_CORRUPT_MESSAGE = "database disk image is malformed";

/** What an operator should do about a damaged file, said wherever the damage is reported. */
function damageAdvice(path: string): string {
  return `stop the server, run sqlite3 ${path} "PRAGMA integrity_check" to see what is damaged, ` +
    "and restore the file from a backup";
}

/** Thrown when SQLite finds the data file damaged: names the file, the room, and what to do. */
export class DamagedStoreError extends Error {
  override name = "DamagedStoreError";
  /** The data file. */
  readonly path: string;
  /** The room whose pages were being read or written, or null when the call was not for one. */
  readonly room: string | null;
  /** The file, the damage and the advice, without the failed action: for a `Cannot start` line. */
  readonly detail: string;

  constructor(action: string, path: string, room: string | null, cause: unknown) {
    const detail = `${path} is damaged (${errorMessage(cause)}): ${damageAdvice(path)}`;
    super(`Cannot ${action}: ${detail}`, { cause });
    this.path = path;
    this.room = room;
    this.detail = detail;
  }
}

/** Thrown by {@linkcode SqliteStore.open} when another store, in any process, holds the file. */
export class StoreInUseError extends Error {
  override name = "StoreInUseError";
  /** The data file. */
  readonly path: string;

  constructor(path: string) {
    super(`Cannot open store: ${path} is in use by another store, perhaps in another process`);
    this.path = path;
  }
}

/**
 * Schema migrations; `PRAGMA user_version` holds how many have run. Append new steps, never edit
 * old ones: a file at version N runs steps N+1… in one transaction when opened.
 *
 * `text` and `cid` are `ANY` rather than `TEXT` because Deno's `node:sqlite` cuts strings at
 * U+0000 when binding and reading; strings holding one are stored as UTF-8 BLOBs instead.
 * `ts` is a STRICT INTEGER: a fractional timestamp is a caller bug and fails the append.
 * The `ts` index serves both age pruning and `recentWithCid`; as a secondary index of a
 * WITHOUT ROWID table it holds (ts, room, seq), so pruning finds victims without touching rows.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE messages (
     room TEXT NOT NULL,
     seq INTEGER NOT NULL,
     from_name TEXT NOT NULL,
     from_key TEXT NOT NULL,
     text ANY NOT NULL,
     ts INTEGER NOT NULL,
     cid ANY,
     PRIMARY KEY (room, seq)
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX messages_by_ts ON messages (ts);
   CREATE TABLE rooms (
     room TEXT PRIMARY KEY,
     latest INTEGER NOT NULL
   ) STRICT, WITHOUT ROWID;`,
];

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Options for {@linkcode SqliteStore.open}. */
export interface SqliteStoreOptions {
  /**
   * `"full"` syncs the WAL on every commit, so an acknowledged message survives power loss;
   * `"normal"` survives a process crash but may lose the last commits on power loss.
   * @default "full"
   */
  synchronous?: "full" | "normal";
  /** @default {} (keep everything) */
  retention?: RetentionPolicy;
  /** How long a call waits for another connection's lock, in ms. @default 1000 */
  busyTimeoutMs?: number;
  /** Most rows one `prune` call deletes. @default {@linkcode DEFAULT_PRUNE_CHUNK_ROWS} */
  pruneChunkRows?: number;
  /**
   * Hears of damage the first time a call for a room finds it (and once for calls not about one
   * room), at most {@linkcode MAX_DAMAGED_ROOMS_REPORTED} rooms. The call still throws.
   * @default nothing is reported
   */
  onDamaged?: (error: DamagedStoreError) => void;
}

/** Keeps room history in a SQLite file (or `:memory:`), in WAL mode. */
export class SqliteStore implements Store {
  #db: DatabaseSync;
  #path: string;
  /** The open file holding the lock on `#path`; null for `:memory:`. */
  #lock: DataFileLock | null;
  #onDamaged: ((error: DamagedStoreError) => void) | undefined;
  /** Rooms `onDamaged` was told about ("" for calls not about one room). */
  #damagedReported = new Set<string>();
  #retention: RetentionPolicy;
  #pruneChunkRows: number;
  #closed = false;
  /** Latest seq per room, loaded lazily from `rooms` and updated only after a commit. */
  #latest = new Map<string, number>();
  /** Rooms found on open holding more than `maxMessagesPerRoom` (written under a larger limit). */
  #overLimit: string[] = [];
  /** The account tables on this connection, once asked for. */
  #accounts: SqliteAccountStore | null = null;

  #begin: StatementSync;
  #commit: StatementSync;
  #rollback: StatementSync;
  #insert: StatementSync;
  #upsertRoom: StatementSync;
  #selectLatest: StatementSync;
  #selectOldest: StatementSync;
  #readAscending: StatementSync;
  #readDescending: StatementSync;
  #selectRecentWithCid: StatementSync;
  #selectExpired: StatementSync;
  #deletePrefix: StatementSync;

  /**
   * Opens (creating if needed) the store at `path`; `:memory:` keeps it in process memory.
   * Throws {@linkcode StoreInUseError} when another store holds the file,
   * {@linkcode DamagedStoreError} when SQLite finds it damaged, and "Cannot open store: …" when
   * it is newer than this code, not a database, or WAL cannot be enabled.
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    let lock: DataFileLock | null = null;
    let db: DatabaseSync | undefined;
    try {
      // The lock comes first: a second store must not even switch the file's journal mode.
      lock = path === ":memory:" || !LOCKS_BESIDE_SQLITE ? null : lockDataFile(path);
      db = new DatabaseSync(path);
      return new SqliteStore(db, path, lock, options);
    } catch (e) {
      db?.close();
      lock?.release(); // after the database: see DataFileLock
      if (e instanceof StoreInUseError || e instanceof DamagedStoreError) throw e;
      if (isCorrupt(e)) throw new DamagedStoreError("open store", path, null, e);
      if (e instanceof Error && e.message.startsWith("Cannot open store")) throw e;
      // e.g. a missing permission, or a file that is not a database
      throw new Error(`Cannot open store: ${path}: ${errorMessage(e)}`, { cause: e });
    }
  }

  private constructor(
    db: DatabaseSync,
    path: string,
    lock: DataFileLock | null,
    options: SqliteStoreOptions,
  ) {
    this.#db = db;
    this.#path = path;
    this.#lock = lock;
    this.#onDamaged = options.onDamaged;
    this.#retention = checkRetention(options.retention ?? {});
    const busyMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    if (!Number.isSafeInteger(busyMs) || busyMs < 0) {
      throw new Error("Cannot open store: busyTimeoutMs must be a whole number of ms ≥ 0");
    }
    this.#pruneChunkRows = options.pruneChunkRows ?? DEFAULT_PRUNE_CHUNK_ROWS;
    if (!Number.isSafeInteger(this.#pruneChunkRows) || this.#pruneChunkRows < 1) {
      throw new Error("Cannot open store: pruneChunkRows must be a whole number ≥ 1");
    }
    // busy_timeout first: switching to WAL needs a lock another process may hold briefly.
    db.exec(`PRAGMA busy_timeout = ${busyMs}`);
    const mode = db.prepare("PRAGMA journal_mode = WAL").get()?.journal_mode;
    if (path !== ":memory:" && mode !== "wal") {
      throw new Error(`Cannot open store: ${path} stayed in journal mode ${String(mode)}, not WAL`);
    }
    db.exec(`PRAGMA synchronous = ${options.synchronous === "normal" ? "NORMAL" : "FULL"}`);
    db.exec(`PRAGMA journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
    db.exec(`PRAGMA analysis_limit = ${ANALYSIS_LIMIT_ROWS}`);
    migrate(db, path);

    this.#begin = db.prepare("BEGIN IMMEDIATE");
    this.#commit = db.prepare("COMMIT");
    this.#rollback = db.prepare("ROLLBACK");
    this.#insert = db.prepare(
      "INSERT INTO messages (room, seq, from_name, from_key, text, ts, cid) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.#upsertRoom = db.prepare(
      "INSERT INTO rooms (room, latest) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET latest = excluded.latest",
    );
    this.#selectLatest = db.prepare("SELECT latest FROM rooms WHERE room = ?");
    this.#selectOldest = db.prepare("SELECT min(seq) AS oldest FROM messages WHERE room = ?");
    const columns = "room, seq, from_name, text, ts, cid";
    this.#readAscending = db.prepare(
      `SELECT ${columns} FROM messages WHERE room = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?`,
    );
    this.#readDescending = db.prepare(
      `SELECT ${columns} FROM messages WHERE room = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
    );
    // (ts, room, seq) is the index order, so this sorts without a temporary b-tree.
    this.#selectRecentWithCid = db.prepare(
      `SELECT ${columns} FROM messages WHERE ts >= ? AND cid IS NOT NULL ORDER BY ts, room, seq`,
    );
    // The oldest-by-time rows come from the ts index alone; per room, everything up to the
    // highest expired seq goes, so a room keeps a gap-free range even after a clock step back.
    this.#selectExpired = db.prepare(
      `SELECT room, max(seq) AS upto FROM
         (SELECT room, seq FROM messages WHERE ts < ? ORDER BY ts LIMIT ?)
       GROUP BY room`,
    );
    // Deletes seqs <= ?2 of room ?1, but only the ?3 oldest, so one call stays bounded.
    // The subquery does not refer to the outer row, so SQLite evaluates it once.
    this.#deletePrefix = db.prepare(
      `DELETE FROM messages WHERE room = ?1 AND seq <= ?2
         AND seq < (SELECT min(seq) FROM messages WHERE room = ?1) + ?3`,
    );
    // A file written under a larger (or no) limit may hold more per room than allowed now.
    // Finding those rooms costs one index probe per room, once, here rather than in `prune`,
    // so that `prune` returning 0 always means nothing is left to do.
    const max = this.#retention.maxMessagesPerRoom;
    if (max !== undefined) {
      this.#overLimit = db.prepare(
        `SELECT room FROM rooms AS r
         WHERE (SELECT min(seq) FROM messages AS m WHERE m.room = r.room) <= r.latest - ?
         ORDER BY room`,
      ).all(max).map((row) => String(row.room));
    }
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The connection's journal mode, sync level and lock wait as SQLite reports them. */
  get settings(): { journalMode: string; synchronous: string; busyTimeoutMs: number } {
    this.#assertOpen("read settings");
    const pragma = (name: string) =>
      Object.values(this.#db.prepare(`PRAGMA ${name}`).get() ?? {})[0];
    const sync = Number(pragma("synchronous"));
    return {
      journalMode: String(pragma("journal_mode")),
      synchronous: ["off", "normal", "full", "extra"][sync] ?? String(sync),
      busyTimeoutMs: Number(pragma("busy_timeout")),
    };
  }

  /**
   * Stores the batch in one `BEGIN IMMEDIATE` transaction and returns the stored messages in
   * batch order. On any error it rolls back and throws "Cannot append: …"; nothing is stored and
   * no seq is used up. With `maxMessagesPerRoom`, each room drops as many of its oldest messages
   * as the batch pushed over the limit (never more, so a lowered limit is caught up by `prune`).
   */
  append(batch: readonly NewMessage[]): ChatMessage[] {
    this.#assertOpen("append");
    if (batch.length === 0) return [];
    const out: ChatMessage[] = [];
    const pending = new Map<string, { latest: number; added: number }>();
    const max = this.#retention.maxMessagesPerRoom;
    try {
      this.#begin.run();
      for (const m of batch) {
        let room = pending.get(m.room);
        if (room === undefined) {
          room = { latest: this.#latestOf(m.room), added: 0 };
          pending.set(m.room, room);
        }
        const seq = ++room.latest;
        room.added++;
        this.#insert.run(
          m.room,
          seq,
          m.from,
          nameKey(m.from),
          bindable(m.text),
          m.ts,
          m.cid === undefined ? null : bindable(m.cid),
        );
        const stored: ChatMessage = { room: m.room, seq, from: m.from, text: m.text, ts: m.ts };
        if (m.cid !== undefined) stored.cid = m.cid;
        out.push(stored);
      }
      for (const [room, { latest, added }] of pending) {
        this.#upsertRoom.run(room, latest);
        if (max !== undefined) this.#deletePrefix.run(room, latest - max, added);
      }
      this.#commit.run();
    } catch (e) {
      this.#rollbackIfOpen();
      if (isCorrupt(e)) {
        // The rooms the batch reached share the transaction; each is reported, as any may hold
        // the damage.
        const rooms = [...pending.keys()];
        for (const room of rooms) {
          this.#reportDamage(
            room,
            new DamagedStoreError(`append to room ${room}`, this.#path, room, e),
          );
        }
        const one = rooms.length === 1 ? rooms[0] : null;
        const action = one !== null
          ? `append to room ${one}`
          : rooms.length === 0
          ? "append"
          : `append to ${rooms.length} rooms`;
        throw new DamagedStoreError(action, this.#path, one, e);
      }
      throw new Error(`Cannot append: ${errorMessage(e)}`, { cause: e });
    }
    // Only now: a rolled-back batch must not advance the cache.
    for (const [room, { latest }] of pending) this.#latest.set(room, latest);
    return out;
  }

  /** Reads messages of `room` in `range`, oldest first, by the same rules as `MemoryStore`. */
  read(room: string, range: ReadRange): ChatMessage[] {
    this.#assertOpen("read");
    const limit = Math.min(Math.trunc(range.limit), Number.MAX_SAFE_INTEGER);
    if (!(limit > 0)) return []; // SQLite reads LIMIT -1 as "no limit"
    const after = range.after ?? 0; // seqs start at 1
    const before = range.before ?? Number.MAX_SAFE_INTEGER;
    const fromNewest = range.after === undefined &&
      (range.before !== undefined || range.newest === true);
    try {
      if (fromNewest) {
        return this.#readDescending.all(room, after, before, limit).map(toMessage).reverse();
      }
      return this.#readAscending.all(room, after, before, limit).map(toMessage);
    } catch (e) {
      throw this.#damagedOr(e, `read history of room ${room}`, room);
    }
  }

  /** The seq range `room` holds: `oldest` is `latest + 1` when it holds nothing. */
  bounds(room: string): RoomBounds {
    this.#assertOpen("read bounds");
    try {
      const latest = this.#latestOf(room);
      const oldest = this.#selectOldest.get(room)?.oldest;
      return { oldest: typeof oldest === "number" ? oldest : latest + 1, latest };
    } catch (e) {
      throw this.#damagedOr(e, `read the bounds of room ${room}`, room);
    }
  }

  /** Messages carrying a cid with `ts >= sinceTs`, oldest first (ties by room, then seq). */
  recentWithCid(sinceTs: number): ChatMessage[] {
    this.#assertOpen("read recent messages");
    try {
      return this.#selectRecentWithCid.all(sinceTs).map(toMessage);
    } catch (e) {
      throw this.#damagedOr(e, "read recent messages", null);
    }
  }

  /**
   * Applies the retention policy to at most `pruneChunkRows` rows, in one transaction,
   * and returns how many it removed. A return of 0 means nothing is left to do for `now`; any
   * other value means the caller should call again soon (e.g. on the next tick) to catch up.
   *
   * By age, a room loses every message up to its highest seq older than `maxAgeMs`; with a
   * monotonic clock that is exactly its expired messages, after a clock step back it may take a
   * few newer ones with it rather than leave a gap.
   */
  prune(now: number): number {
    this.#assertOpen("prune");
    const { maxMessagesPerRoom: max, maxAgeMs } = this.#retention;
    if (this.#overLimit.length === 0 && maxAgeMs === undefined) return 0;
    let removed = 0;
    let trimmedRooms = 0;
    try {
      this.#begin.run();
      for (const room of this.#overLimit) { // only ever filled when max is set
        const budget = this.#pruneChunkRows - removed;
        if (budget === 0) break;
        const upto = this.#latestOf(room) - (max ?? 0);
        const deleted = Number(this.#deletePrefix.run(room, upto, budget).changes);
        removed += deleted;
        if (deleted === budget) break; // it may hold more: start there next time
        trimmedRooms++;
      }
      if (maxAgeMs !== undefined && removed < this.#pruneChunkRows) {
        const expired = this.#selectExpired.all(now - maxAgeMs, this.#pruneChunkRows - removed);
        for (const row of expired) {
          const budget = this.#pruneChunkRows - removed;
          if (budget === 0) break;
          removed += Number(this.#deletePrefix.run(row.room, row.upto, budget).changes);
        }
      }
      this.#commit.run();
    } catch (e) {
      this.#rollbackIfOpen();
      if (isCorrupt(e)) throw this.#damagedOr(e, "prune", null);
      throw new Error(`Cannot prune: ${errorMessage(e)}`, { cause: e });
    }
    // Once trimmed, appends keep a room within the limit on their own.
    this.#overLimit.splice(0, trimmedRooms);
    return removed;
  }

  /**
   * Copies the database to `destPath` (overwriting it) with SQLite's online backup API, through
   * `node:sqlite`'s `backup()`, and resolves once it is complete. The copy is a
   * consistent snapshot and includes everything committed so far.
   *
   * Not `VACUUM INTO`: Deno's `node:sqlite` sets `SQLITE_LIMIT_ATTACHED` to 0 unless the process
   * runs with `--allow-all` (denoland/deno#28667), and `VACUUM INTO` needs to attach the target.
   * `backup()` checks `--allow-write=<destPath>` itself. Deno runs the whole copy in one call,
   * so the event loop stalls for its duration (5-10 ms per MB on the 2-core VM of
   * bench/store_bench.ts): run it when the server is quiet, or copy the file offline instead.
   */
  async backup(destPath: string): Promise<void> {
    this.#assertOpen("back up");
    try {
      await backup(this.#db, destPath);
    } catch (e) {
      throw new Error(`Cannot back up to ${destPath}: ${errorMessage(e)}`, { cause: e });
    }
  }

  /**
   * The account store (store/sqlite_accounts.ts) in this file, on this store's connection and
   * under its lock; its tables are created the first time this is called on a file. Made once;
   * closing this store closes it too.
   */
  accounts(): SqliteAccountStore {
    this.#assertOpen("open account store");
    return this.#accounts ??= new SqliteAccountStore(this.#db, this.#path);
  }

  /**
   * Runs `PRAGMA optimize` and closes the database; the last connection to close checkpoints the
   * WAL into the main file and removes `-wal` and `-shm`. Safe to call twice.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#accounts?.close();
    try {
      this.#db.exec("PRAGMA optimize");
    } catch (e) {
      // Only a hint for the query planner; a damaged file must still close and release its lock.
      if (!isCorrupt(e)) throw e;
    } finally {
      try {
        this.#db.close();
      } finally {
        // Only now: the close checkpoints the WAL, and no other server may open the file before.
        this.#lock?.release();
      }
    }
  }

  /** `error` as a {@linkcode DamagedStoreError} (reported) when it says the file is damaged. */
  #damagedOr(error: unknown, action: string, room: string | null): unknown {
    if (!isCorrupt(error)) return error;
    const damaged = new DamagedStoreError(action, this.#path, room, error);
    this.#reportDamage(room ?? "", damaged);
    return damaged;
  }

  #reportDamage(key: string, error: DamagedStoreError): void {
    if (this.#onDamaged === undefined || this.#damagedReported.has(key)) return;
    if (this.#damagedReported.size >= MAX_DAMAGED_ROOMS_REPORTED) return;
    this.#damagedReported.add(key);
    this.#onDamaged(error);
  }

  #latestOf(room: string): number {
    const cached = this.#latest.get(room);
    if (cached !== undefined) return cached;
    const latest = this.#selectLatest.get(room)?.latest;
    if (typeof latest !== "number") return 0; // not cached: unknown names must not grow the map
    this.#latest.set(room, latest);
    return latest;
  }

  #rollbackIfOpen(): void {
    // COMMIT may fail after SQLite already rolled back (e.g. an I/O error), and BEGIN may fail
    // before a transaction started; a second error here would hide the first.
    if (!this.#db.isTransaction) return;
    try {
      this.#rollback.run();
    } catch {
      // The original error is the one worth reporting.
    }
  }

  #assertOpen(action: string): void {
    if (this.#closed) throw new Error(`Cannot ${action}: the store is closed`);
  }
}

/** Runs the migrations `db` has not seen yet, in one transaction. */
function migrate(db: DatabaseSync, path: string): void {
  const version = Number(db.prepare("PRAGMA user_version").get()?.user_version ?? 0);
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `Cannot open store: ${path} has schema version ${version}, newer than ${SCHEMA_VERSION}`,
    );
  }
  if (version === SCHEMA_VERSION) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    for (const step of MIGRATIONS.slice(version)) db.exec(step);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw new Error(`Cannot open store: migrating ${path} failed: ${errorMessage(e)}`, {
      cause: e,
    });
  }
}

function checkRetention(retention: RetentionPolicy): RetentionPolicy {
  const { maxMessagesPerRoom: max, maxAgeMs } = retention;
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 0)) {
    throw new Error("Cannot open store: maxMessagesPerRoom must be a whole number ≥ 0");
  }
  if (maxAgeMs !== undefined && !(maxAgeMs >= 0)) {
    throw new Error("Cannot open store: maxAgeMs must be a number of ms ≥ 0");
  }
  return { ...retention };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A string SQLite can hold whole: a BLOB of its UTF-8 when it contains U+0000 (see MIGRATIONS). */
function bindable(s: string): string | Uint8Array {
  return s.includes("\0") ? encoder.encode(s) : s;
}

function textOf(v: SQLOutputValue): string {
  return typeof v === "string" ? v : v instanceof Uint8Array ? decoder.decode(v) : String(v);
}

function toMessage(row: Record<string, SQLOutputValue>): ChatMessage {
  const m: ChatMessage = {
    room: String(row.room),
    seq: Number(row.seq),
    from: String(row.from_name),
    text: textOf(row.text),
    ts: Number(row.ts),
  };
  if (row.cid !== null) m.cid = textOf(row.cid);
  return m;
}

/** Whether `e` is SQLite saying the file is damaged (SQLITE_CORRUPT or an extended form of it). */
function isCorrupt(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if ("errcode" in e && typeof e.errcode === "number") {
    return (e.errcode & 0xff) === SQLITE_CORRUPT;
  }
  // `exec` errors carry no errcode in Deno's node:sqlite, only SQLite's message for the code.
  return e.message === SQLITE_CORRUPT_MESSAGE;
}

/** The exclusive lock one store holds on its data file; see {@linkcode lockDataFile}. */
interface DataFileLock {
  /** Releases the lock; call it only after the database connection is closed. */
  release(): void;
}

/**
 * Whether a whole-file lock can sit beside SQLite's own locks. Not on Windows: there Deno locks
 * with LockFileEx, which is mandatory and would keep SQLite's own handle from reading the file,
 * so a second server on the same file is not refused there.
 */
const LOCKS_BESIDE_SQLITE = Deno.build.os !== "windows";

/** Data files (by device and inode) locked by a store of this process. */
const lockedHere = new Set<string>();

/**
 * Takes an exclusive `flock` on `path` (creating the file if needed), or throws
 * {@linkcode StoreInUseError} at once when another store holds it.
 *
 * Why a `flock` on the data file itself: the kernel releases it when the process ends, however it
 * ends (a SIGKILL or a power cut leaves no stale lock behind); it needs no permission beyond the
 * data file's; and on Linux and macOS it is independent of the POSIX byte-range locks SQLite uses,
 * so `sqlite3 chat.db ".backup …"` still works while the server runs. SQLite's own
 * `locking_mode = EXCLUSIVE` would block that backup, and a pid file can go stale.
 *
 * Why the in-process set: closing any descriptor of a file drops every POSIX lock this process
 * holds on it (SQLite's included), so a second store in this process must be refused before it
 * opens a descriptor of its own. Across processes the `flock` decides. (Over NFS, where `flock`
 * may be emulated with POSIX locks, WAL mode is unsupported anyway.)
 */
function lockDataFile(path: string): DataFileLock {
  const identity = () => {
    const { dev, ino } = Deno.statSync(path);
    return `${dev}:${ino}`;
  };
  let key: string | null = null;
  try {
    key = identity();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (key !== null && lockedHere.has(key)) throw new StoreInUseError(path);
  // Write access creates a missing file (SQLite reads an empty file as an empty database).
  const file = Deno.openSync(path, { read: true, write: true, create: true });
  try {
    if (!file.tryLockSync(true)) throw new StoreInUseError(path);
    key ??= identity();
  } catch (e) {
    file.close(); // no store of this process has the file open (checked above)
    throw e;
  }
  const held = key;
  lockedHere.add(held);
  return {
    release() {
      lockedHere.delete(held);
      file.close(); // closing the descriptor releases the flock
    },
  };
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
