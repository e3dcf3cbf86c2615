/**
 * The join flow: a client becomes a member of a room and gets exactly one copy of every message.
 * `joined` carries history up to the room's `latest` seq at the instant the client becomes a
 * member, and every later commit reaches it live. In a cluster the room's feed is subscribed
 * before the history is read, so no line falls between the two. Commands a client sends into a
 * room while its join is in flight are held by the hub and replayed, in order, when it ends.
 */
import type { Client } from "../client.ts";
import {
  DEFAULT_HISTORY_LIMIT,
  joinedLine,
  MAX_JOINED_MEMBERS,
  presenceLine,
} from "../protocol/protocol.ts";
import type { ReadRange, Store } from "../store/store.ts";
import { type Cluster, fromCluster } from "./cluster.ts";
import type { FanOut } from "./fanout.ts";
import { readLines } from "./history.ts";
import type { Memberships } from "./member.ts";
import type { Remote } from "./remote.ts";
import type { Replies } from "./replies.ts";
import type { Rooms } from "./rooms.ts";
import type { HubObservers } from "./options.ts";
import type { Presence } from "./presence.ts";
import type { AccountStore } from "../store/accounts.ts";

/** Most messages one `joined` reply carries when the client asks with `since`. */
export const MAX_JOIN_SINCE_MESSAGES = 1000;

/** What {@linkcode Joins} works with; all of it owned by the hub. */
export interface JoinParts {
  store: Store;
  /** With `remote`, when other instances share the rooms. */
  cluster: Cluster | null;
  remote: Remote | null;
  rooms: Rooms;
  presence: Presence;
  memberships: Memberships;
  fanout: FanOut;
  replies: Replies;
  observers: HubObservers;
  now: () => number;
  maxRoomsPerClient: number;
  /** Runs the commands `client` sent into `room` while its join was in flight. */
  replayHeld(client: Client, room: string): void;
  /** Fills a room from the store when lines came that it could not take in order. */
  resync(room: string): void;
  /** True when another connection of `client`'s account is a member of `room` here. */
  alsoIn(client: Client, room: string): boolean;
  /** Writes something about `client`'s account (its rooms); a failure is logged. */
  remember(client: Client, write: (accounts: AccountStore, accountId: string) => unknown): void;
}

/** Joins clients to rooms. */
export class Joins {
  #p: JoinParts;

  constructor(parts: JoinParts) {
    this.#p = parts;
  }

  /** Members of a room here, by name. */
  names(roomName: string): string[] {
    return [...(this.#p.rooms.get(roomName)?.members ?? [])].map((c) => c.name!);
  }

  async join(
    client: Client,
    roomName: string,
    since: number | undefined,
    cid: string | undefined,
  ): Promise<void> {
    const p = this.#p;
    const member = p.memberships.of(client);
    const already = member.rooms.has(roomName);
    if (!already && member.joining?.has(roomName)) return; // the first join's reply answers both
    const inFlight = member.joining?.size ?? 0;
    if (!already && member.rooms.size + inFlight >= p.maxRoomsPerClient) {
      const message = `Cannot join: at most ${p.maxRoomsPerClient} rooms`;
      return p.replies.refuse(client, "too_many_rooms", message, cid);
    }
    const room = p.rooms.open(roomName);
    room.joinStarted();
    const joining = member.joining ??= new Set();
    joining.add(roomName);
    // In a cluster, subscribe before reading so no line falls between the history and the feed.
    let entered = false;
    try {
      // The account's other connection in the room is the account's presence there already.
      if (p.cluster !== null && !already && !p.alsoIn(client, roomName)) {
        // Marked first: a failed enter may have recorded part of itself, and must be undone.
        entered = true;
        await fromCluster(p.cluster.enterRoom(roomName, client.name!));
      }
      if (!room.ready) room.readyAt((await p.store.bounds(roomName)).latest);
      const range: ReadRange = since === undefined
        ? { limit: DEFAULT_HISTORY_LIMIT, newest: true }
        : { after: since, limit: MAX_JOIN_SINCE_MESSAGES + 1 };
      const page = await readLines(p.store, room, range);
      // Joins waiting for the same room share one load of its roster (in a cluster; none here).
      await p.presence.ready(room);
      if (client.closed) return;
      let more = false;
      if (page.lines.length > MAX_JOIN_SINCE_MESSAGES) {
        page.lines.length = MAX_JOIN_SINCE_MESSAGES;
        more = true;
      }
      // Lines committed since the page was read reached only the members of that moment.
      if (!already && !more && room.latest > page.upTo) {
        const missed = room.cached(
          page.upTo,
          Number.MAX_SAFE_INTEGER,
          room.latest - page.upTo,
          false,
        );
        if (missed === null) more = true; // not cached: the client pages forward for them
        else page.lines.push(...missed);
      }
      // Everything committed up to room.latest is in the history (or, with more, reachable by
      // paging); everything committed from now on reaches the client live.
      if (!already) {
        // Events queued before this instant belong to the members who were there: the joiner is
        // owed only what comes after, so it never sees, say, a join its `members` list includes.
        const present = p.alsoIn(client, roomName);
        room.addMember(client);
        member.rooms.add(roomName);
        member.joinedAt.set(roomName, room.latest);
        if (!present) {
          const line = presenceLine("join", roomName, client.name!, p.now());
          p.presence.arrived(room, client.name!, line, client);
          p.cluster?.publishPresence(roomName, line);
          p.observers.event?.("info", "join", { name: client.name!, room: roomName });
        }
        // The room is the account's: its other devices join it when they next sign in.
        p.remember(client, (accounts, id) => accounts.joinRoom(id, roomName, p.maxRoomsPerClient));
      }
      entered = false; // the membership is now the client's; leaving undoes it
      const members = {
        names: room.roster.page(undefined, MAX_JOINED_MEMBERS).names,
        count: room.roster.count,
      };
      p.replies.send(
        client,
        joinedLine(roomName, members, page.lines, room.latest, {
          more,
          truncated: since !== undefined && page.truncated,
        }),
      );
      if (room.pendingSeq > room.latest) p.resync(roomName);
    } catch (e) {
      p.replies.unavailable(client, e, "Cannot join: history is unavailable, try again", cid);
    } finally {
      joining.delete(roomName);
      if (joining.size === 0 && member.joining === joining) member.joining = null;
      room.joinEnded();
      p.replayHeld(client, roomName);
      if (entered && !p.alsoIn(client, roomName)) {
        p.remote!.track(p.cluster!.exitRoom(roomName, client.name!, room.unused));
      }
      p.rooms.dropIfUnused(room);
    }
  }
}
