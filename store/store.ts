/**
 * The history store interface, and the in-memory store used for `--data :memory:` and unit tests.
 *
 * The store is the one source of truth for room history and owns seq allocation: `append` assigns
 * each message the next seq of its room inside one transaction, so a store shared by several
 * server instances (Redis) can allocate seqs atomically without the hub knowing. Methods may answer
 * synchronously (SQLite, memory) or with a promise (network stores); the hub handles both, and
 * takes the synchronous path without an extra microtask when it can.
 */
import type { ChatMessage } from "../protocol/protocol.ts";

/** A value now, or later. */
export type MaybePromise<T> = T | Promise<T>;

/** A message accepted from a client, before the store has given it a seq. */
export interface NewMessage {
  room: string;
  from: string;
  text: string;
  ts: number;
  cid?: string;
}

/** Which messages of one room to read; results are always oldest first. */
export interface ReadRange {
  /** Only messages with seq > after. */
  after?: number;
  /** Only messages with seq < before. */
  before?: number;
  /**
   * How many at most. With `after` (or neither bound) the oldest `limit` matching messages are
   * returned, except with neither bound and `newest: true`, where the newest `limit` are.
   */
  limit: number;
  /** With only `before` or no bound: take the newest `limit` matching messages. */
  newest?: boolean;
}

/** The seq range a room still holds. */
export interface RoomBounds {
  /** Lowest seq still stored; `latest + 1` when nothing is stored. */
  oldest: number;
  /** Highest seq ever issued in the room; 0 when none. */
  latest: number;
}

/** How much history to keep; both limits apply when both are set. */
export interface RetentionPolicy {
  /** Keep at most this many messages per room. */
  maxMessagesPerRoom?: number;
  /** Drop messages older than this, in milliseconds. */
  maxAgeMs?: number;
}

/**
 * A message a fenced store would not store, because its sender no longer holds its name in the
 * cluster: another instance holds it now (`elsewhere`), or nobody does (`unheld`: this instance
 * was presumed dead and is writing its names back).
 */
export interface Refused {
  refused: "elsewhere" | "unheld";
}

/** What `append` made of one message of the batch. */
export type Appended = ChatMessage | Refused;

/** Durable room history: append a batch, read by room and seq range, bounds, retention. */
export interface Store {
  /**
   * Stores the batch in one transaction, giving each message the next seq of its room, and returns
   * the stored messages in batch order. Nothing is stored when it throws or rejects. Only a store
   * that checks senders (the Redis store of a cluster) ever answers {@linkcode Refused}.
   */
  append(batch: readonly NewMessage[]): MaybePromise<Appended[]>;
  /** Reads messages of `room` in `range`, oldest first. */
  read(room: string, range: ReadRange): MaybePromise<ChatMessage[]>;
  /** The seq range `room` holds. */
  bounds(room: string): MaybePromise<RoomBounds>;
  /** Messages carrying a cid stored at or after `sinceTs`, oldest first, to rebuild the resend guard. */
  recentWithCid(sinceTs: number): MaybePromise<ChatMessage[]>;
  /** Applies the retention policy once; returns how many messages it removed. */
  prune(now: number): MaybePromise<number>;
  /** Commits whatever is pending and releases the store; safe to call twice. */
  close(): MaybePromise<void>;
}

/** Options for {@linkcode MemoryStore}. */
export interface MemoryStoreOptions {
  /** @default {} (keep everything) */
  retention?: RetentionPolicy;
}

/** Keeps history in process memory; nothing survives a restart. */
export class MemoryStore implements Store {
  #rooms = new Map<string, { latest: number; messages: ChatMessage[] }>();
  #retention: RetentionPolicy;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#retention = options.retention ?? {};
  }

  append(batch: readonly NewMessage[]): ChatMessage[] {
    if (this.#closed) throw new Error("Cannot append: the store is closed");
    const out: ChatMessage[] = [];
    for (const m of batch) {
      let room = this.#rooms.get(m.room);
      if (room === undefined) this.#rooms.set(m.room, room = { latest: 0, messages: [] });
      const stored: ChatMessage = {
        room: m.room,
        seq: ++room.latest,
        from: m.from,
        text: m.text,
        ts: m.ts,
      };
      if (m.cid !== undefined) stored.cid = m.cid;
      room.messages.push(stored);
      out.push(stored);
    }
    const max = this.#retention.maxMessagesPerRoom;
    if (max !== undefined) {
      for (const m of batch) {
        const room = this.#rooms.get(m.room)!;
        if (room.messages.length > max) room.messages.splice(0, room.messages.length - max);
      }
    }
    return out;
  }

  read(room: string, range: ReadRange): ChatMessage[] {
    const messages = this.#rooms.get(room)?.messages ?? [];
    // Seqs are dense within what is kept, so bounds map to indexes by binary search.
    const lo = range.after === undefined ? 0 : firstIndexAbove(messages, range.after);
    const hi = range.before === undefined
      ? messages.length
      : firstIndexAbove(messages, range.before - 1);
    if (lo >= hi) return [];
    const fromNewest = range.after === undefined &&
      (range.before !== undefined || range.newest === true);
    return fromNewest
      ? messages.slice(Math.max(lo, hi - range.limit), hi)
      : messages.slice(lo, Math.min(hi, lo + range.limit));
  }

  bounds(room: string): RoomBounds {
    const r = this.#rooms.get(room);
    if (r === undefined) return { oldest: 1, latest: 0 };
    return { oldest: r.messages[0]?.seq ?? r.latest + 1, latest: r.latest };
  }

  recentWithCid(sinceTs: number): ChatMessage[] {
    const out: ChatMessage[] = [];
    for (const r of this.#rooms.values()) {
      for (const m of r.messages) if (m.cid !== undefined && m.ts >= sinceTs) out.push(m);
    }
    return out.sort((a, b) => a.ts - b.ts);
  }

  prune(now: number): number {
    const maxAge = this.#retention.maxAgeMs;
    if (maxAge === undefined) return 0;
    let removed = 0;
    for (const r of this.#rooms.values()) {
      let i = 0;
      while (i < r.messages.length && r.messages[i].ts < now - maxAge) i++;
      if (i > 0) r.messages.splice(0, i);
      removed += i;
    }
    return removed;
  }

  close(): void {
    this.#closed = true;
  }
}

/** Index of the first message with seq > seq, in a list sorted by seq. */
export function firstIndexAbove(messages: readonly ChatMessage[], seq: number): number {
  let lo = 0, hi = messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (messages[mid].seq > seq) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
