/**
 * The line protocol between the large-room scenarios (bench/large_room.ts) and their crowd
 * processes (bench/crowd.ts): one JSON request per line on the child's stdin, one reply per
 * request on its stdout with the same `id` (bench/processes.ts LineChild).
 */

import type { SparseHistogram } from "./histogram.ts";
import type { SeqTally } from "./exactly_once.ts";

/** A request before the transport numbers it. */
export type CrowdRequest =
  /**
   * Opens `names` (new clients, or the same names again after a restart) at `perS` connections
   * a second: each says hello, then joins `room` — with `since` = the last seq it saw when
   * `since` is true. `track`: scan message lines for seqs and latency (off: only count joins).
   */
  | {
    cmd: "open";
    url: string;
    room: string;
    names: string[];
    perS: number;
    since: boolean;
    track: boolean;
  }
  /** Counts now. */
  | { cmd: "stats" }
  /** When each client of the latest `open` got `joined`, and how long after its connect. */
  | { cmd: "joins" }
  /** Client `name` says `count` stamped texts, one each `intervalMs`. */
  | { cmd: "say"; name: string; count: number; intervalMs: number; textBytes: number }
  /**
   * Steady load: `rate` texts a second in all, round-robin over `senders`, from `startAt` to
   * `stopAt` (wall ms); deliveries of texts sent in [measureFrom, stopAt) are latency samples.
   */
  | {
    cmd: "send";
    senders: string[];
    rate: number;
    startAt: number;
    measureFrom: number;
    stopAt: number;
    textBytes: number;
  }
  /**
   * Until `stopAt`, `perS` members of `names` a second leave the room; each joins again with
   * `since` once its `left` came and `awayMs` passed (those still away at `stopAt` too).
   */
  | { cmd: "churn"; names: string[]; perS: number; awayMs: number; stopAt: number }
  /** The latency samples so far (then cleared). */
  | { cmd: "latency" }
  /** The exactly-once verdict of every tracked client in the room against its last seq `through`. */
  | { cmd: "verify"; through: number }
  /** Closes every client and exits. */
  | { cmd: "exit" };

/** What a crowd process counts. */
export interface CrowdStats {
  /** Connections begun by `open` so far. */
  opened: number;
  /** Clients in the room now (got `joined`, not since left or closed). */
  joined: number;
  /** Connections or handshakes that failed. */
  failed: number;
  /** Clients whose connection ended after it opened, by close code ("none" without one). */
  closes: Record<string, number>;
  /** Wall ms of the last connection `open` began (NaN before any). */
  lastConnectAt: number;
  /** Highest seq any client saw (NaN when none did). */
  lastSeq: number;
  /** Leaves and rejoins `churn` made. */
  left: number;
  rejoined: number;
  /** `error` lines received. */
  errors: number;
}

/** Counts at zero: a fresh crowd, and the start of a sum over crowds. */
export function emptyCrowdStats(): CrowdStats {
  return {
    opened: 0,
    joined: 0,
    failed: 0,
    closes: {},
    lastConnectAt: NaN,
    lastSeq: NaN,
    left: 0,
    rejoined: 0,
    errors: 0,
  };
}

/** A successful reply; the fields beyond `stats` come with the request that asks for them. */
export interface CrowdReply {
  id: number;
  ok: true;
  stats: CrowdStats;
  /** `joins`: wall ms each client of the latest open got `joined`, in no order. */
  joinedAt?: number[];
  /** `joins`: ms from each one's connect to its `joined`. */
  joinMs?: number[];
  /** `latency`: send → receive of live deliveries in the measured window. */
  histogram?: SparseHistogram;
  /** `verify`. */
  tally?: SeqTally;
}
