/**
 * Who is in a room, as its members hear it. A small room (at most PRESENCE_BATCH_MEMBERS names)
 * hears one `join` or `leave` line per arrival and departure, as it always did. A large room hears
 * at most one `presence` frame per PRESENCE_INTERVAL_MS: the names whose presence changed since the
 * last frame, each listed once by where it stands now (a name that came and went is in `left`), up
 * to MAX_PRESENCE_NAMES, with `more` when more changed, and the count. Stating the final state,
 * not the steps, lets a member who joined between two frames apply the next one to the list its
 * `joined` gave it and be right. A room's pending frame goes out before any per-person line, so a
 * room that shrinks below the threshold keeps its order.
 *
 * The count and pages come from the room's roster (roster.ts). In a cluster the roster is loaded
 * once from the cluster when the room opens here (after its feed is subscribed, so nothing falls
 * between), and kept by every presence line after; roster changes that come during a load are
 * applied after it. A load runs again when the link to the other instances comes back.
 */
import type { Client } from "../client.ts";
import { nameKey, presenceBatchLine } from "../protocol/protocol.ts";
import { type Cluster, fromCluster } from "./cluster.ts";
import type { Room } from "./room.ts";
import type { Rooms } from "./rooms.ts";
import { MAX_PRESENCE_NAMES, PRESENCE_BATCH_MEMBERS, PRESENCE_INTERVAL_MS } from "../ops/limits.ts";

/** What {@linkcode Presence} works with; all of it owned by the hub. */
export interface PresenceParts {
  rooms: Rooms;
  cluster: Cluster | null;
  now: () => number;
  /** Runs `fn` after `delayMs`, returning a cancel function. */
  timer: (fn: () => void, delayMs: number) => () => void;
}

/** A large room's changes waiting for their frame. */
interface Pending {
  /** Changed names by key, in the spelling last seen. */
  changed: Map<string, string>;
  cancel: (() => void) | null;
}

/** A roster load in flight, and the roster changes that came meanwhile. */
interface Load {
  done: Promise<void>;
  ops: { add: boolean; name: string }[];
}

/** Tells rooms' members who came and went, per person or batched by size. */
export class Presence {
  #p: PresenceParts;
  #pending = new WeakMap<Room, Pending>();
  /** When each large room's last frame went out, in ms. */
  #lastFrameAt = new WeakMap<Room, number>();
  #loads = new WeakMap<Room, Load>();
  #loaded = new WeakSet<Room>();

  constructor(parts: PresenceParts) {
    this.#p = parts;
  }

  /**
   * Resolves once `room`'s roster lists every instance's members (at once on one instance). The
   * joins waiting for one room share its load.
   */
  ready(room: Room): Promise<void> {
    if (this.#p.cluster === null || this.#loaded.has(room)) return Promise.resolve();
    return this.#loads.get(room)?.done ?? this.reload(room);
  }

  /** Loads `room`'s roster from the cluster again (the link was down: lines may be lost). */
  reload(room: Room): Promise<void> {
    const cluster = this.#p.cluster;
    if (cluster === null) return Promise.resolve();
    const load: Load = { ops: [], done: Promise.resolve() };
    load.done = (async () => {
      try {
        const names = await fromCluster(cluster.members(room.name));
        if (this.#loads.get(room) !== load) return; // a newer load replaced this one
        room.roster.reset(names);
        for (const op of load.ops) op.add ? room.roster.add(op.name) : room.roster.remove(op.name);
        this.#loaded.add(room);
      } finally {
        if (this.#loads.get(room) === load) this.#loads.delete(room);
      }
    })();
    this.#loads.set(room, load);
    return load.done;
  }

  /** `name` arrived in `room`; `line` is its join line, sent (in a small room) to all but `except`. */
  arrived(room: Room, name: string, line: string, except?: Client): void {
    this.#loads.get(room)?.ops.push({ add: true, name });
    room.roster.add(name);
    this.#tell(room, name, line, except);
  }

  /** `name` left `room`; `line` is its leave line. */
  departed(room: Room, name: string, line: string): void {
    this.#loads.get(room)?.ops.push({ add: false, name });
    room.roster.remove(name);
    this.#tell(room, name, line);
  }

  #tell(room: Room, name: string, line: string, except?: Client): void {
    if (room.roster.count > PRESENCE_BATCH_MEMBERS) return this.#note(room, name);
    this.flush(room);
    this.#p.rooms.emit(room, line, except);
  }

  /** Records a large room's change and makes sure its frame is due. */
  #note(room: Room, name: string): void {
    let pending = this.#pending.get(room);
    if (pending === undefined) {
      this.#pending.set(room, pending = { changed: new Map(), cancel: null });
    }
    pending.changed.set(nameKey(name), name);
    if (pending.cancel !== null) return;
    const last = this.#lastFrameAt.get(room);
    const wait = last === undefined ? 0 : Math.max(0, last + PRESENCE_INTERVAL_MS - this.#p.now());
    pending.cancel = this.#p.timer(() => {
      pending.cancel = null;
      this.flush(room);
    }, wait);
  }

  /** Sends `room`'s pending presence frame now, if it has one. */
  flush(room: Room): void {
    const pending = this.#pending.get(room);
    if (pending === undefined || pending.changed.size === 0) return;
    pending.cancel?.();
    pending.cancel = null;
    const joined: string[] = [], left: string[] = [];
    let named = 0;
    for (const name of pending.changed.values()) {
      if (named === MAX_PRESENCE_NAMES) break;
      (room.roster.has(name) ? joined : left).push(name);
      named++;
    }
    const more = pending.changed.size > named;
    pending.changed.clear();
    const now = this.#p.now();
    this.#lastFrameAt.set(room, now);
    this.#p.rooms.emit(
      room,
      presenceBatchLine(room.name, { joined, left, more }, room.roster.count, now),
    );
  }
}
