/**
 * The server's fixed limits that both the hub and `--help` need, each with its unit. A leaf module:
 * the hub, the client and ops/config.ts import it, and it imports nothing, so config lists these
 * limits without importing the hub back up (issue 13).
 */

/**
 * A client with lines waiting whose socket has drained nothing for this long, in ms, is stalled and
 * evicted (4008). Long enough that a reader is never judged by the server's own busy stretches
 * (the socket drains only when the event loop runs the writes), short enough that a peer that
 * stopped reading holds its budget for seconds, not minutes.
 */
export const STALL_TIMEOUT_MS = 2000;
/**
 * A direct reply (welcome, joined, history, error, DM) goes out beside room lines already waiting
 * while the socket holds at most this many send budgets; past that the client is evicted at once
 * ("over_budget"). Room lines never take a socket over one budget (see hub/room_log.ts).
 */
export const HARD_LIMIT_FACTOR = 8;
/**
 * How far, in UTF-8 bytes, a member may fall behind its room's newest line before it is evicted as
 * a slow consumer (4008, "fell behind"); also the most a room's log holds for its members.
 */
export const ROOM_WINDOW_BYTES = 8 * 1024 * 1024;
/**
 * Bytes one sender may have waiting for the next commit (its texts' UTF-8 plus hub/fanout.ts's
 * PENDING_LINE_BYTES each); past it, `say` is refused with `rate_limited`.
 */
export const MAX_PENDING_BYTES_PER_SENDER = 1024 * 1024;
/** Bytes all senders together may have waiting for the next commit, counted the same way. */
export const MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** Rooms with more members than this hear batched `presence` frames instead of join/leave lines. */
export const PRESENCE_BATCH_MEMBERS = 200;
/** A large room hears at most one `presence` frame per this many ms. */
export const PRESENCE_INTERVAL_MS = 1000;
/** Most names one `presence` frame carries; past it the frame says `more`. */
export const MAX_PRESENCE_NAMES = 100;
/** Upgrades that may wait for a pending slot at once (`--upgrade-wait`); past it, refused at once. */
export const MAX_WAITING_UPGRADES = 4096;
/** Of those, from one client address. */
export const MAX_WAITING_PER_ADDRESS = 256;
/** Committed messages kept in memory per active room, so joins and resumes rarely read the store. */
export const ROOM_CACHE_MESSAGES = 1000;
/**
 * The most memory those messages may take, in bytes (each counted as two bytes per UTF-16 unit of
 * its line and of its text, V8's worst case): long messages keep fewer. The cache holds up to twice
 * either bound before it is cut back to it, so trimming is amortised.
 */
export const ROOM_CACHE_BYTES = 4 * 1024 * 1024;
