/**
 * The commit and fan-out engine: it queues messages until one group commit, then serves each
 * changed room's log to its members within their send budgets, and keeps serving members behind
 * until they catch up or are found slow.
 *
 * Design, by step:
 * 1. `offer` queues a message in `#pending` (bounded per sender and in total; past a bound the
 *    caller refuses it) and schedules one flush.
 * 2. The flush hands every pending message to the store in ONE `append` (one transaction). Nothing
 *    is echoed before the commit, so an echo is an acknowledgement that the message is durable.
 *    When the store answers asynchronously, commits are serialised (one in flight) and messages
 *    that arrive meanwhile form the next batch.
 * 3. `committed` (the hub) appends each stored line to its room's log and `mark`s the room; the
 *    flush then serves every marked room (room_log.ts: frames built once per caught-up group, each
 *    member handed only what fits).
 * 4. Flushes run on the next macrotask when idle; after a flush that took D ms the next waits up
 *    to D ms (at most MAX_LINGER_MS), so under load frames carry more messages instead of the
 *    server making more sends.
 * 5. Members behind are served again by a drain poll: on the next turn after a pass that handed
 *    them something, every DRAIN_POLL_MS otherwise. Slow consumers found in a pass are handed to
 *    `evict` after it.
 */
import type { Client } from "../client.ts";
import type { Appended, NewMessage, Store } from "../store/store.ts";
import type { Room } from "./room.ts";
import type { Eviction, SlowKind } from "./room_log.ts";
import { MAX_PENDING_BYTES, MAX_PENDING_BYTES_PER_SENDER } from "../ops/limits.ts";
import { clearImmediate, setImmediate } from "node:timers";

/** A flush shorter than this, in ms, adds no linger: light load flushes on the next turn. */
export const LINGER_AFTER_MS = 1;
/** Longest linger between flushes, in ms; bounds the latency batching adds under load. */
export const MAX_LINGER_MS = 20;
/**
 * How often, in ms, members behind in a room's log are served again and judged when the last pass
 * could hand them nothing; after a pass that handed something, the next runs on the next turn.
 */
export const DRAIN_POLL_MS = 10;
/** What a message adds to the pending count besides its text, in bytes (its line's other fields). */
export const PENDING_LINE_BYTES = 128;
/** Bounds of the `retryAfterMs` hint a saturated server gives, in ms. */
export const MIN_RETRY_AFTER_MS = 20;
export const MAX_RETRY_AFTER_MS = 1000;

/** A message waiting for the next commit. */
export interface Pending {
  message: NewMessage;
  sender: Client;
  guardKey: string | undefined;
  /** Bytes counted against the pending bounds. */
  bytes: number;
}

/** What the engine asks of its owner (the hub). */
export interface FanOutHooks {
  /** A batch is stored, `stored[i]` for `batch[i]`: append the lines to the rooms' logs, echo. */
  committed(batch: Pending[], stored: Appended[]): void;
  /** A batch could not be stored. */
  failed(batch: Pending[], error: unknown): void;
  /** A member a pass found slow; called after the pass. */
  evict(client: Client, kind: SlowKind): void;
  /** False once a room was dropped: the drain poll skips it. */
  current(room: Room): boolean;
}

/** Options for {@linkcode FanOut}. */
export interface FanOutOptions {
  store: Store;
  hooks: FanOutHooks;
  /** Counters the engine adds to (the hub's stats). */
  stats: { framesSent: number; messagesDelivered: number };
  now: () => number;
  /** Runs `fn` after `delayMs` (0: the next macrotask). @default setImmediate for 0, setTimeout */
  schedule?: (fn: () => void, delayMs: number) => void;
  /** The drain poll's timer, returning a cancel function. @default setImmediate for 0, setTimeout */
  timer?: (fn: () => void, delayMs: number) => () => void;
  /** One flush (commit excluded) took this long, in seconds. */
  flushSeconds?(seconds: number): void;
  /** One store commit took this long, in seconds. */
  commitSeconds?(seconds: number): void;
}

/** Group commit, then fan-out within budgets; see the module header. */
export class FanOut {
  #store: Store;
  #hooks: FanOutHooks;
  #options: FanOutOptions;
  #schedule: (fn: () => void, delayMs: number) => void;
  #timer: (fn: () => void, delayMs: number) => () => void;
  #pending: Pending[] = [];
  /** Bytes in `#pending`, in total and per sender. */
  #pendingBytes = 0;
  #pendingBySender = new Map<Client, number>();
  /** Rooms with lines no member has been offered yet. */
  #dirty = new Set<Room>();
  /** Rooms with members behind in their log: the drain poll serves them. */
  #lagging = new Set<Room>();
  #flushScheduled = false;
  /** Cancels the scheduled flush (default scheduler only). */
  #cancelFlush = () => {};
  /** When the next flush may start (performance.now() ms): the linger after a long flush. */
  #nextFlushAt = 0;
  /** How long the last commit and its flush took, in ms: the base of the `retryAfterMs` hint. */
  #lastCycleMs = 0;
  #committing: Promise<void> | null = null;
  /** Cancels the drain poll; null when none is armed. */
  #cancelDrain: (() => void) | null = null;
  /** The last pass handed lines to members behind: the next one runs on the next turn. */
  #drainProgress = false;
  #closed = false;
  readonly #flushBound = () => this.#flush();

  constructor(options: FanOutOptions) {
    this.#store = options.store;
    this.#hooks = options.hooks;
    this.#options = options;
    this.#schedule = options.schedule ??
      ((fn, delayMs) => this.#cancelFlush = nextTurnOrLater(fn, delayMs));
    this.#timer = options.timer ?? nextTurnOrLater;
  }

  /** Queues a message for the next commit; false when its sender's share or the queue is full. */
  offer(p: Pending): boolean {
    const mine = this.#pendingBySender.get(p.sender) ?? 0;
    if (
      mine + p.bytes > MAX_PENDING_BYTES_PER_SENDER ||
      this.#pendingBytes + p.bytes > MAX_PENDING_BYTES
    ) return false;
    this.#pendingBySender.set(p.sender, mine + p.bytes);
    this.#pendingBytes += p.bytes;
    this.#pending.push(p);
    this.schedule();
    return true;
  }

  /** When a refused sender should try again, in ms: about one commit and flush from now. */
  get retryAfterMs(): number {
    return Math.min(
      MAX_RETRY_AFTER_MS,
      Math.max(MIN_RETRY_AFTER_MS, Math.ceil(this.#lastCycleMs * 2)),
    );
  }

  /** Marks a room whose log has new lines; the next flush serves it. */
  mark(room: Room): void {
    this.#dirty.add(room);
  }

  /** A room was dropped: it is served no more. */
  forget(room: Room): void {
    this.#dirty.delete(room);
    this.#lagging.delete(room);
  }

  /** Schedules one flush (at most one is pending); after a long flush, once the linger is over. */
  schedule(): void {
    if (this.#flushScheduled || this.#closed) return;
    this.#flushScheduled = true;
    // No linger pending (the common idle case) needs no clock read.
    const wait = this.#nextFlushAt === 0 ? 0 : this.#nextFlushAt - performance.now();
    this.#schedule(this.#flushBound, wait >= 1 ? Math.ceil(wait) : 0);
  }

  /** Commits everything queued and serves every marked room, then stops all timers. */
  async close(): Promise<void> {
    while (this.#committing !== null || this.#pending.length > 0) {
      if (this.#committing !== null) await this.#committing;
      else this.#flush();
    }
    this.#serveDirty();
    this.#closed = true;
    this.#cancelFlush();
    this.#cancelDrain?.();
    this.#cancelDrain = null;
  }

  /** Commits pending messages as one batch, then serves each marked room. */
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#committing !== null) return; // the running commit reschedules when it ends
    const batch = this.#pending;
    if (batch.length === 0) return this.#serveDirty();
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#pendingBySender.clear();
    const started = performance.now();
    let result;
    try {
      result = this.#store.append(batch.map((p) => p.message));
    } catch (e) {
      return this.#failed(batch, e);
    }
    if (result instanceof Promise) {
      this.#committing = result.then(
        (stored) => this.#committed(batch, stored, started),
        (e) => this.#failed(batch, e),
      ).finally(() => {
        this.#committing = null;
        if (this.#pending.length > 0 || this.#dirty.size > 0) this.schedule();
      });
      return;
    }
    this.#committed(batch, result, started);
  }

  #committed(batch: Pending[], stored: Appended[], started: number): void {
    const committed = performance.now();
    this.#options.commitSeconds?.((committed - started) / 1000);
    this.#hooks.committed(batch, stored);
    this.#serveDirty(committed);
    this.#lastCycleMs = performance.now() - started;
  }

  #failed(batch: Pending[], error: unknown): void {
    this.#hooks.failed(batch, error);
    this.#serveDirty();
  }

  /** Serves every marked room; the flush counts from `started` (the commit's end). */
  #serveDirty(started = performance.now()): void {
    if (this.#dirty.size === 0) return;
    const rooms = [...this.#dirty];
    this.#dirty.clear();
    this.#serveRooms(rooms);
    const ended = performance.now();
    this.#options.flushSeconds?.((ended - started) / 1000);
    // Linger: after a flush that took D ms, the next waits up to D ms (at most MAX_LINGER_MS).
    // An idle server still flushes on the next turn; a busy one spends at most about half its
    // time writing, so reads keep up and frames grow with the load instead of the send count.
    const took = ended - started;
    this.#nextFlushAt = took >= LINGER_AFTER_MS ? ended + Math.min(took, MAX_LINGER_MS) : 0;
  }

  /**
   * Hands each room's members what fits in their send budgets (see room_log.ts), then evicts the
   * slow consumers found: after the pass, because eviction runs the leave path, which edits rooms.
   */
  #serveRooms(rooms: Iterable<Room>): void {
    const now = this.#options.now();
    const evict: Eviction[] = [];
    const stats = this.#options.stats;
    let caughtUp = 0;
    for (const room of rooms) {
      if (room.members.size === 0) continue;
      const served = room.log.serve(room.members, now, evict);
      caughtUp += served.behindServed;
      stats.framesSent += served.frames;
      stats.messagesDelivered += served.delivered;
      if (room.log.lagging) this.#lagging.add(room);
      else this.#lagging.delete(room);
    }
    for (const { client, kind } of evict) this.#hooks.evict(client, kind);
    this.#drainProgress = caughtUp > 0;
    this.#armDrain();
  }

  /** Keeps the drain poll running while any member is behind, so it is served and judged. */
  #armDrain(): void {
    if (this.#lagging.size === 0 || this.#cancelDrain !== null || this.#closed) return;
    this.#cancelDrain = this.#timer(() => {
      this.#cancelDrain = null;
      const rooms = [...this.#lagging];
      this.#lagging.clear();
      this.#serveRooms(rooms.filter((r) => this.#hooks.current(r)));
    }, this.#drainProgress ? 0 : DRAIN_POLL_MS);
  }
}

/**
 * Runs `fn` after `delayMs`, or on the next macrotask for 0, and returns its cancel function.
 * Deno's setTimeout(fn, 0) fires ~2 ms later on an idle loop (setTimeout(fn, N): ~N + 1 ms),
 * setImmediate within ~0.1 ms: an idle server's flush would otherwise add 2 ms to every line.
 */
export function nextTurnOrLater(fn: () => void, delayMs: number): () => void {
  if (delayMs <= 0) {
    const immediate = setImmediate(fn);
    return () => clearImmediate(immediate);
  }
  const timer = setTimeout(fn, delayMs);
  return () => clearTimeout(timer);
}
