/**
 * What the hub knows of one connection's membership, kept by the hub (not on the connection): its
 * rooms, when it joined each, joins still in flight, commands held for them, and its last typing
 * notice per room.
 */
import type { Client } from "../client.ts";
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

/** Every connection's membership record, held by the hub; a connection itself keeps none. */
export class Memberships {
  #records = new WeakMap<Client, Member>();

  /** The record of `client`, made on first use. */
  of(client: Client): Member {
    let m = this.#records.get(client);
    if (m === undefined) this.#records.set(client, m = new Member());
    return m;
  }

  /** The record of `client` if it has one (a read that makes nothing). */
  peek(client: Client): Member | undefined {
    return this.#records.get(client);
  }
}
