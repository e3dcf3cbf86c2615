/**
 * Delivers committed messages to a room's members in seq order, from this instance's commits and
 * from other instances alike, filling any gap from the store, which stays the source of truth (the
 * bus between instances only makes delivery fast).
 */
import { type ChatMessage, messageLine } from "../protocol/protocol.ts";
import type { Store } from "../store/store.ts";
import type { FanOut } from "./fanout.ts";
import type { Room } from "./room.ts";

/** Messages one resync reads per store call. */
export const RESYNC_PAGE_MESSAGES = 1000;

/** Options for {@linkcode Sequencer}. */
export interface SequencerOptions {
  store: Store;
  fanout: FanOut;
  /** A store read failed; the room waits for the next line or resync. */
  failed(error: unknown): void;
}

/** Puts committed lines into rooms' logs in seq order; see the module header. */
export class Sequencer {
  #options: SequencerOptions;

  constructor(options: SequencerOptions) {
    this.#options = options;
  }

  /**
   * Delivers a committed message in seq order, filling a gap from the store first. False when the
   * members already had it (a late or repeated line, or a resend the store recognised).
   */
  deliver(room: Room, m: ChatMessage, line: string): boolean {
    if (m.seq <= room.latest) return false;
    if (!room.ready || room.resyncing || m.seq > room.latest + 1) {
      room.notePending(m.seq);
      if (room.ready && !room.resyncing) void this.resync(room);
      return true;
    }
    room.remember(m, line);
    if (room.members.size > 0) {
      room.log.append(line);
      this.#options.fanout.mark(room);
    }
    return true;
  }

  /**
   * Fills a room from the store after the last seq its members got: after the link to the other
   * instances was down, or when a line arrived past a gap.
   */
  async resync(room: Room): Promise<void> {
    if (!room.ready || room.resyncing) return;
    room.setResyncing(true);
    const { store, fanout } = this.#options;
    try {
      for (;;) {
        const got = await store.read(room.name, {
          after: room.latest,
          limit: RESYNC_PAGE_MESSAGES,
        });
        for (const m of got) {
          if (m.seq <= room.latest) continue;
          const line = messageLine(m);
          room.remember(m, line);
          if (room.members.size > 0) room.log.append(line);
        }
        if (got.length < RESYNC_PAGE_MESSAGES) break;
      }
    } catch (e) {
      this.#options.failed(e);
    } finally {
      room.setResyncing(false);
    }
    if (room.log.unserved) {
      fanout.mark(room);
      fanout.schedule();
    }
  }
}
