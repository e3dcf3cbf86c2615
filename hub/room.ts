/**
 * One room on this instance: its members here, a cache of its recent committed messages with their
 * serialised lines, and its outbound log (room_log.ts), which holds what its members are owed. The
 * hub owns every Room and is the only one that changes it.
 */
import type { Client } from "../client.ts";
import type { ChatMessage } from "../protocol/protocol.ts";
import { RoomLog, type RoomLogOptions } from "./room_log.ts";
import { Roster } from "./roster.ts";
import { ROOM_CACHE_BYTES, ROOM_CACHE_MESSAGES } from "../ops/limits.ts";

/** Largest outbound room frame, in UTF-8 bytes; more lines than that go out as several frames. */
export const MAX_FRAME_OUT_BYTES = 256 * 1024;
/**
 * The frame cap for a send budget: a sixteenth of it, between 4 KiB and MAX_FRAME_OUT_BYTES. A
 * socket's `bufferedAmount` falls a whole frame at a time, so small frames let a slow but steady
 * reader show progress well within STALL_TIMEOUT_MS, and a budget holds many of them.
 */
export function frameBytesForBudget(sendQueueBytes: number): number {
  return Math.max(4096, Math.min(MAX_FRAME_OUT_BYTES, Math.floor(sendQueueBytes / 16)));
}

/**
 * One room with members: who is in it, what was said recently, what is owed to its members. The
 * hub adds and removes members through its methods, like everything else here.
 */
export class Room {
  readonly name: string;
  #members = new Set<Client>();
  /** Lines owed to the members, shared, with cursors for the members behind. */
  readonly log: RoomLog;
  /** Every member's name, here or (in a cluster) on any instance; presence.ts keeps it. */
  readonly roster = new Roster();
  #latest = 0;
  /** Recent committed messages and their serialised lines, oldest first, contiguous by seq. */
  #cache: ChatMessage[] = [];
  #cacheLines: string[] = [];
  /** What the cache holds, counted as `cachedBytes` does. */
  #cacheBytes = 0;
  #joinsInFlight = 0;
  #ready = false;
  #resyncing = false;
  #pendingSeq = 0;

  constructor(name: string, log: RoomLogOptions) {
    this.name = name;
    this.log = new RoomLog(log);
  }

  /** This instance's members of the room. */
  get members(): ReadonlySet<Client> {
    return this.#members;
  }

  /** `client` becomes a member: it is owed what the room sends from now on, nothing before. */
  addMember(client: Client): void {
    this.log.enter(client);
    this.#members.add(client);
  }

  /** `client` is a member no more: it is owed nothing. */
  removeMember(client: Client): void {
    this.#members.delete(client);
    this.log.forget(client);
  }

  /** Highest committed seq known. */
  get latest(): number {
    return this.#latest;
  }

  /** False until `latest` has been read from the store; remote lines wait for it. */
  get ready(): boolean {
    return this.#ready;
  }

  /** The store says the room has reached `latest`: from now on lines are delivered in order. */
  readyAt(latest: number): void {
    if (this.#ready) return;
    this.#latest = Math.max(this.#latest, latest);
    this.#ready = true;
  }

  /** A gap is being filled from the store. */
  get resyncing(): boolean {
    return this.#resyncing;
  }

  /** Marks the start (true) or end (false) of filling a gap from the store. */
  setResyncing(on: boolean): void {
    this.#resyncing = on;
  }

  /** Highest remote seq seen while not ready or resyncing: past `latest`, another fill is due. */
  get pendingSeq(): number {
    return this.#pendingSeq;
  }

  /** A line with `seq` came while the room could not take it in order. */
  notePending(seq: number): void {
    if (seq > this.#pendingSeq) this.#pendingSeq = seq;
  }

  /** A join began waiting on the store (the room is kept until it ends). */
  joinStarted(): void {
    this.#joinsInFlight++;
  }

  /** A join ended, whatever its outcome. */
  joinEnded(): void {
    this.#joinsInFlight--;
  }

  /** No member here and no join on its way: nothing on this instance needs the room. */
  get unused(): boolean {
    return this.#members.size === 0 && this.#joinsInFlight === 0;
  }

  remember(m: ChatMessage, line: string): void {
    // A gap (another instance's messages we missed) restarts the cache so it stays contiguous.
    if (this.#cache.length > 0 && m.seq !== this.#cache[this.#cache.length - 1].seq + 1) {
      this.#cache = [];
      this.#cacheLines = [];
      this.#cacheBytes = 0;
    }
    this.#cache.push(m);
    this.#cacheLines.push(line);
    this.#cacheBytes += cachedBytes(m, line);
    if (this.#cache.length > ROOM_CACHE_MESSAGES * 2 || this.#cacheBytes > ROOM_CACHE_BYTES * 2) {
      let keep = Math.min(this.#cache.length, ROOM_CACHE_MESSAGES), bytes = 0;
      for (let i = this.#cache.length - 1; i >= this.#cache.length - keep; i--) {
        const b = cachedBytes(this.#cache[i], this.#cacheLines[i]);
        if (bytes + b > ROOM_CACHE_BYTES) {
          keep = this.#cache.length - 1 - i;
          break;
        }
        bytes += b;
      }
      this.#cache = this.#cache.slice(this.#cache.length - keep);
      this.#cacheLines = this.#cacheLines.slice(this.#cacheLines.length - keep);
      this.#cacheBytes = bytes;
    }
    if (m.seq > this.#latest) this.#latest = m.seq;
  }

  /** What the cache holds now, in bytes (as ROOM_CACHE_BYTES counts them). */
  get cacheBytes(): number {
    return this.#cacheBytes;
  }

  /** Drops cached messages below `oldest`: retention removed them from the store. */
  forgetBelow(oldest: number): void {
    const first = this.#cache[0]?.seq;
    if (first === undefined || first >= oldest) return;
    const drop = Math.min(this.#cache.length, oldest - first);
    for (let i = 0; i < drop; i++) {
      this.#cacheBytes -= cachedBytes(this.#cache[i], this.#cacheLines[i]);
    }
    this.#cache = this.#cache.slice(drop);
    this.#cacheLines = this.#cacheLines.slice(drop);
  }

  /**
   * Lines of cached messages with seq in (after, before): the newest `limit` of them when `newest`,
   * else the oldest `limit`. Null when the cache does not hold the whole answer.
   */
  cached(after: number, before: number, limit: number, newest: boolean): string[] | null {
    const highest = Math.min(before - 1, this.#latest);
    if (highest <= after) return [];
    const n = this.#cache.length;
    if (n === 0 || this.#cache[n - 1].seq < highest) return null;
    const first = this.#cache[0].seq;
    const lowest = newest ? Math.max(after + 1, highest - limit + 1) : after + 1;
    if (lowest < first) return null;
    const lo = lowest - first;
    return this.#cacheLines.slice(lo, Math.min(highest - first + 1, lo + limit));
  }
}

/** What one cached message costs at most, in bytes: its line and its text at two bytes a unit. */
function cachedBytes(m: ChatMessage, line: string): number {
  return 2 * (line.length + m.text.length);
}
