/**
 * The room members the overload scenario holds in the orchestrator itself: "stalled" ones that
 * join and never read again, and "slow" ones that read at about SLOW_MEMBER_BYTES_PER_S.
 */

import { scanStamps } from "./stamp.ts";
import { joinAs } from "./session.ts";
import { RawWebSocket } from "./ws_client.ts";
import { sleep } from "./run.ts";

/** How fast a slow member reads, in bytes per second (issue 12: "reading at ~100 KB/s"). */
export const SLOW_MEMBER_BYTES_PER_S = 100_000;
/** How often a slow member's reading is paced, in ms; one read takes at most a tick's bytes. */
export const PACE_TICK_MS = 50;
/** After the load, a member's backlog is read until nothing arrives for this long, in ms. */
const DRAIN_QUIET_MS = 500;

/** Which kind of laggard a member is. */
export type LaggardKind = "stalled" | "slow";

/** Bytes a reader paced at `bytesPerS` may have read `elapsedMs` after it began. */
export function paceAllowance(elapsedMs: number, bytesPerS: number): number {
  return Math.floor((Math.max(0, elapsedMs) * bytesPerS) / 1000);
}

/** One stalled or slow member: its socket, the messages it got, how its connection ended. */
export class Laggard {
  readonly kind: LaggardKind;
  readonly name: string;
  /** Room messages (stamped lines) received so far. */
  messages = 0;
  /** The close code, null when the connection ended without one; undefined while open. */
  closeCode: number | null | undefined = undefined;
  #ws: RawWebSocket;
  #timer: ReturnType<typeof setInterval> | undefined;
  #readFrom = 0;
  #bytesAtBegin = 0;
  #allowance = Infinity;

  private constructor(kind: LaggardKind, name: string, ws: RawWebSocket) {
    this.kind = kind;
    this.name = name;
    this.#ws = ws;
    ws.onClose = (code) => this.closeCode = code;
    ws.onPayload = (bytes, start, end) => {
      this.messages += scanStamps(bytes, start, end, () => {});
      if (ws.bytesRead - this.#bytesAtBegin >= this.#allowance) ws.pause();
    };
  }

  /** Joins `room` at `url` as `name` and stops reading at once (until `begin`). */
  static async join(kind: LaggardKind, url: URL, name: string, room: string): Promise<Laggard> {
    const ws = await joinAs(RawWebSocket.connect, url, name, room, () => {});
    ws.pause();
    return new Laggard(kind, name, ws);
  }

  /** Bytes received so far. */
  get bytesRead(): number {
    return this.#ws.bytesRead;
  }

  /** Starts the member's behaviour: a stalled one stays paused, a slow one reads at its pace. */
  begin(): void {
    if (this.kind === "stalled" || this.#timer !== undefined) return;
    this.#readFrom = performance.now();
    this.#bytesAtBegin = this.#ws.bytesRead;
    this.#allowance = 0;
    this.#ws.maxReadBytes = paceAllowance(PACE_TICK_MS, SLOW_MEMBER_BYTES_PER_S);
    this.#timer = setInterval(() => {
      this.#allowance = paceAllowance(performance.now() - this.#readFrom, SLOW_MEMBER_BYTES_PER_S);
      if (this.#ws.bytesRead - this.#bytesAtBegin < this.#allowance) this.#ws.start();
    }, PACE_TICK_MS);
  }

  /**
   * Reads whatever is left at full speed until the connection ends, nothing arrives for a
   * moment, or `maxMs` passes: a 4008 close frame waiting behind the backlog is found this way.
   */
  async drain(maxMs: number): Promise<void> {
    clearInterval(this.#timer);
    this.#allowance = Infinity;
    this.#ws.maxReadBytes = Infinity;
    this.#ws.start();
    const until = performance.now() + maxMs;
    let last = -1;
    let quietSince = performance.now();
    while (this.closeCode === undefined && performance.now() < until) {
      await sleep(100);
      if (this.#ws.bytesRead !== last) {
        last = this.#ws.bytesRead;
        quietSince = performance.now();
      } else if (performance.now() - quietSince >= DRAIN_QUIET_MS) break;
    }
  }

  /** Stops pacing and closes the socket; safe to call twice. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#ws.close();
  }
}
