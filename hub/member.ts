/**
 * What the hub knows of one connection's membership, kept by the hub (not on the connection): its
 * rooms, when it joined each, joins still in flight, commands held for them, and its last typing
 * notice per room.
 */
import type { Command } from "../protocol/protocol.ts";

/** One connection's membership state; only the hub creates and changes it. */
export class Member {
  /** Rooms this connection is in. */
  readonly rooms = new Set<string>();
  /** Per room, the seq the room had reached when this connection became a member. */
  readonly joinedAt = new Map<string, number>();
  // The next three are created on first use: most connections never need them, and each empty
  // collection costs ~100 bytes on every idle connection.
  /** Rooms with a join in progress (waiting for the store). */
  joining: Set<string> | null = null;
  /** Commands for rooms whose join is in flight, replayed when it ends. */
  held: Command[] | null = null;
  /** Last typing relay per room, in ms. */
  lastTyping: Map<string, number> | null = null;
}
