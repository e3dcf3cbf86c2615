/**
 * The commands that only read: `history` (a page of a room's messages), `members` (a page of its
 * member list, from its roster) and `rooms` (every room with members, here or, in a cluster, on any
 * instance). Only members may read a room; a failed read is answered `unavailable`.
 */
import type { Client } from "../client.ts";
import { historyLine, membersLine, roomsLine } from "../protocol/protocol.ts";
import type { ReadRange, Store } from "../store/store.ts";
import { type Cluster, fromCluster } from "./cluster.ts";
import { readLines } from "./history.ts";
import type { Memberships } from "./member.ts";
import type { Replies } from "./replies.ts";
import type { Room } from "./room.ts";
import type { Rooms } from "./rooms.ts";

/** What {@linkcode Reads} works with; all of it owned by the hub. */
export interface ReadParts {
  store: Store;
  cluster: Cluster | null;
  rooms: Rooms;
  memberships: Memberships;
  replies: Replies;
}

/** Answers the reading commands. */
export class Reads {
  #p: ReadParts;

  constructor(parts: ReadParts) {
    this.#p = parts;
  }

  async history(
    client: Client,
    command: { room: string; before?: number; after?: number; limit: number; cid?: string },
  ): Promise<void> {
    const room = this.#roomOf(client, command.room, "read history", command.cid);
    if (room === null) return;
    const range: ReadRange = { limit: command.limit };
    if (command.after !== undefined) range.after = command.after;
    else if (command.before !== undefined) range.before = command.before;
    else range.newest = true;
    try {
      const page = await readLines(this.#p.store, room, range);
      if (client.closed) return;
      this.#p.replies.send(client, historyLine(command.room, page.lines, page.truncated));
    } catch (e) {
      const message = "Cannot read history: the store is unavailable, try again";
      this.#p.replies.unavailable(client, e, message, command.cid);
    }
  }

  /** A page of the room's member list, in the roster's reading order. */
  members(
    client: Client,
    command: { room: string; after?: string; limit: number; cid?: string },
  ): void {
    const room = this.#roomOf(client, command.room, "list members", command.cid);
    if (room === null) return;
    const page = room.roster.page(command.after, command.limit);
    const line = membersLine(command.room, page.names, room.roster.count, page.next, command.cid);
    this.#p.replies.send(client, line);
  }

  /** Every room with members, here or, in a cluster, on any instance, by name. */
  async rooms(client: Client, cid: string | undefined): Promise<void> {
    const { cluster, replies } = this.#p;
    if (cluster === null) return replies.send(client, roomsLine(this.#p.rooms.list()));
    try {
      const rooms = await fromCluster(cluster.rooms());
      replies.send(client, roomsLine(rooms.sort((a, b) => a.room < b.room ? -1 : 1)));
    } catch (e) {
      replies.unavailable(client, e, "Cannot list rooms: the cluster is unavailable", cid);
    }
  }

  /** The room `client` is a member of, or null after refusing with `not_in_room`. */
  #roomOf(client: Client, name: string, what: string, cid: string | undefined): Room | null {
    const room = this.#p.rooms.get(name);
    if (room !== undefined && this.#p.memberships.of(client).rooms.has(name)) return room;
    this.#p.replies.refuse(client, "not_in_room", `Cannot ${what}: join the room first`, cid);
    return null;
  }
}
