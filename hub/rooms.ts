/**
 * The rooms with members on this instance, by name: made on a first join, dropped when nothing here
 * needs them, and the one way a line reaches a room's members (appended to the room's log, then
 * served by the fan-out engine).
 */
import type { Client } from "../client.ts";
import { Room } from "./room.ts";
import type { FanOut } from "./fanout.ts";
import type { RoomLogOptions } from "./room_log.ts";

/** The registry of this instance's rooms. */
export class Rooms {
  #rooms = new Map<string, Room>();
  #fanout: FanOut;
  #sizes: RoomLogOptions;

  constructor(fanout: FanOut, sizes: RoomLogOptions) {
    this.#fanout = fanout;
    this.#sizes = sizes;
  }

  /** Rooms here now. */
  get size(): number {
    return this.#rooms.size;
  }

  get(name: string): Room | undefined {
    return this.#rooms.get(name);
  }

  /** True while `room` is the one registered under its name (not one dropped meanwhile). */
  current(room: Room): boolean {
    return this.#rooms.get(room.name) === room;
  }

  /** The room named `name`, made now if this instance has none. */
  open(name: string): Room {
    let room = this.#rooms.get(name);
    if (room === undefined) this.#rooms.set(name, room = new Room(name, this.#sizes));
    return room;
  }

  /** Forgets `room` once nothing here needs it (no member, no join on its way). */
  dropIfUnused(room: Room): void {
    if (room.unused && this.current(room)) {
      this.#rooms.delete(room.name);
      this.#fanout.forget(room);
    }
  }

  /** Appends a line to a room's log for its members here (except `except`) and schedules a flush. */
  emit(room: Room, line: string, except?: Client): void {
    if (room.members.size === 0) return;
    room.log.append(line, except);
    this.#fanout.mark(room);
    this.#fanout.schedule();
  }

  /** Rooms with members here and how many, by name. */
  list(): { room: string; members: number }[] {
    return [...this.#rooms.values()]
      .filter((r) => r.members.size > 0)
      .map((r) => ({ room: r.name, members: r.members.size }))
      .sort((a, b) => a.room < b.room ? -1 : 1);
  }

  /** The most UTF-8 bytes any room's log holds now; read at scrape time, off the hot path. */
  logBytesMax(): number {
    let max = 0;
    for (const room of this.#rooms.values()) max = Math.max(max, room.log.heldBytes);
    return max;
  }
}
