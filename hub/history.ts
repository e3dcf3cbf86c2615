/**
 * History reads for joins and `history`: a range of a room's messages as serialised lines, from the
 * room's cache when it holds the whole answer, else from the store, never past what the room's
 * members here were sent live.
 */
import { messageLine } from "../protocol/protocol.ts";
import type { ReadRange, Store } from "../store/store.ts";
import type { Room } from "./room.ts";

/**
 * Reads a range as serialised lines: from the room cache when it holds the whole answer, else
 * from the store. The store's bounds come first, so nothing retention removed is served from the
 * cache either, and `truncated` means the same on both paths.
 */
export async function readLines(store: Store, room: Room, range: ReadRange): Promise<Page> {
  // Reads of the same range of the same room that overlap share one (a reconnect storm asks for
  // the same `since` thousands of times); each caller gets its own copy of the lines.
  const key = `${range.after}/${range.before}/${range.limit}/${range.newest}`;
  let reads = inFlight.get(room);
  if (reads === undefined) inFlight.set(room, reads = new Map());
  let read = reads.get(key);
  if (read === undefined) {
    read = readOnce(store, room, range);
    reads.set(key, read);
    const done = () => {
      if (reads.get(key) === read) reads.delete(key);
    };
    read.then(done, done);
  }
  const page = await read;
  return { ...page, lines: [...page.lines] };
}

/** A page of serialised lines, whether the range was cut by retention, and the seq it reaches. */
export interface Page {
  lines: string[];
  truncated: boolean;
  upTo: number;
}

/** Reads in flight, per room and range. */
const inFlight = new WeakMap<Room, Map<string, Promise<Page>>>();

async function readOnce(store: Store, room: Room, range: ReadRange): Promise<Page> {
  const bounds = await store.bounds(room.name);
  room.forgetBelow(bounds.oldest);
  const after = Math.max(range.after ?? 0, bounds.oldest - 1);
  const before = range.before ?? Number.MAX_SAFE_INTEGER;
  const newest = range.after === undefined;
  let lines = room.cached(after, before, range.limit, newest);
  if (lines === null) {
    // Read below `latest` + 1, not the newest the store has: messages past `latest` would be
    // dropped below and leave the page short (another instance committed them; see next).
    const cap = room.latest + 1;
    const capped = room.ready && newest && before > cap;
    let stored = await store.read(
      room.name,
      capped ? { limit: range.limit, before: cap, newest: true } : range,
    );
    // Messages past `latest` have not reached this instance's members yet (another instance
    // committed them); they arrive live, so the history must stop at `latest`.
    if (room.ready) stored = stored.filter((m) => m.seq <= room.latest);
    lines = stored.map(messageLine);
    // Messages committed while the read was in flight are in the cache; add the ones it missed.
    // The newest page must reach `latest` even when full: it ends where live delivery begins.
    if (range.before === undefined && (newest || stored.length < range.limit)) {
      const last = stored.length > 0 ? stored[stored.length - 1].seq : after;
      const wanted = newest ? Number.MAX_SAFE_INTEGER : range.limit - stored.length;
      const tail = room.cached(last, before, wanted, false);
      if (tail !== null) lines.push(...tail);
      if (lines.length > range.limit) lines = lines.slice(lines.length - range.limit);
    }
  }
  // Truncated: the asked range reaches below the oldest message the store still holds.
  const truncated = newest
    ? lines.length < range.limit && bounds.oldest > 1 && Math.min(before, bounds.latest + 1) > 1
    : (range.after ?? 0) + 1 < bounds.oldest;
  // `latest` now, not when the caller resumes: commits may run in between (microtasks).
  return { lines, truncated, upTo: room.latest };
}
