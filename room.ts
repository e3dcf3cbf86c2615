/**
 * One room on this instance: its members here, a cache of its recent committed messages with their
 * serialised lines, and the outbox of lines waiting for the next flush. The hub owns every Room and
 * is the only one that changes it; this module keeps the room's own bookkeeping and how an outbox
 * becomes frames.
 */
import type { Client } from "./client.ts";
import type { ChatMessage } from "./protocol.ts";

/** Committed messages kept in memory per active room, so joins and resumes rarely read the store. */
export const ROOM_CACHE_MESSAGES = 1000;
/** Largest outbound room frame, in UTF-16 code units (about 256 KiB of ASCII); longer turns split. */
export const MAX_FRAME_OUT_CHARS = 256 * 1024;
/** The frame cap for a send budget: an eighth of it (a character may take 3 bytes, and a frame
 * must fit beside what a healthy client still has in flight), between 4 KiB and 256 KiB. */
export function frameCharsForBudget(sendQueueBytes: number): number {
  return Math.max(4096, Math.min(MAX_FRAME_OUT_CHARS, Math.floor(sendQueueBytes / 8)));
}

/** A line waiting in a room's outbox. */
export interface OutboxLine {
  line: string;
  /** A member who must not receive this line (the joiner of its own join, the typist). */
  except?: Client;
}

/** One room with members: who is in it, what was said recently, what is waiting to be sent. */
export class Room {
  readonly name: string;
  readonly members = new Set<Client>();
  /** Highest committed seq known. */
  latest = 0;
  /** Recent committed messages and their serialised lines, oldest first, contiguous by seq. */
  cache: ChatMessage[] = [];
  cacheLines: string[] = [];
  outbox: OutboxLine[] = [];
  /** Joins waiting on the store; the room is kept while any are. */
  joinsInFlight = 0;

  /** No member here and no join on its way: nothing on this instance needs the room. */
  get unused(): boolean {
    return this.members.size === 0 && this.joinsInFlight === 0;
  }
  /** False until `latest` has been read from the store; remote lines wait for it. */
  ready = false;
  /** A gap is being filled from the store. */
  resyncing = false;
  /** Highest remote seq seen while not ready or resyncing: past `latest`, another fill is due. */
  pendingSeq = 0;

  constructor(name: string) {
    this.name = name;
  }

  remember(m: ChatMessage, line: string): void {
    // A gap (another instance's messages we missed) restarts the cache so it stays contiguous.
    if (this.cache.length > 0 && m.seq !== this.cache[this.cache.length - 1].seq + 1) {
      this.cache = [];
      this.cacheLines = [];
    }
    this.cache.push(m);
    this.cacheLines.push(line);
    if (this.cache.length > ROOM_CACHE_MESSAGES * 2) {
      this.cache = this.cache.slice(-ROOM_CACHE_MESSAGES);
      this.cacheLines = this.cacheLines.slice(-ROOM_CACHE_MESSAGES);
    }
    if (m.seq > this.latest) this.latest = m.seq;
  }

  /** Drops cached messages below `oldest`: retention removed them from the store. */
  forgetBelow(oldest: number): void {
    const first = this.cache[0]?.seq;
    if (first === undefined || first >= oldest) return;
    const drop = Math.min(this.cache.length, oldest - first);
    this.cache = this.cache.slice(drop);
    this.cacheLines = this.cacheLines.slice(drop);
  }

  /**
   * Lines of cached messages with seq in (after, before): the newest `limit` of them when `newest`,
   * else the oldest `limit`. Null when the cache does not hold the whole answer.
   */
  cached(after: number, before: number, limit: number, newest: boolean): string[] | null {
    const highest = Math.min(before - 1, this.latest);
    if (highest <= after) return [];
    const n = this.cache.length;
    if (n === 0 || this.cache[n - 1].seq < highest) return null;
    const first = this.cache[0].seq;
    const lowest = newest ? Math.max(after + 1, highest - limit + 1) : after + 1;
    if (lowest < first) return null;
    const lo = lowest - first;
    return this.cacheLines.slice(lo, Math.min(highest - first + 1, lo + limit));
  }
}

/** Joins lines into frames of at most `maxChars` (a single longer line is its own frame). */
export function buildFrames(
  lines: string[],
  maxChars: number,
): { frame: string; count: number }[] {
  const frames: { frame: string; count: number }[] = [];
  let start = 0, chars = 0;
  for (let i = 0; i <= lines.length; i++) {
    if (i === lines.length || (i > start && chars + lines[i].length + 1 > maxChars)) {
      if (i > start) {
        const frame = i - start === 1 ? lines[start] : lines.slice(start, i).join("\n");
        frames.push({ frame, count: i - start });
      }
      start = i;
      chars = 0;
    }
    if (i < lines.length) chars += lines[i].length + 1;
  }
  return frames;
}
