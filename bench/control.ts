/**
 * The line protocol between the bench orchestrator and its load-generator processes: one JSON
 * object per line on the child's stdin (requests) and stdout (one reply per request, same `id`).
 */

import type { SparseHistogram } from "./histogram.ts";

/** One simulated user: its name and the room it joins. */
export interface ClientSpec {
  name: string;
  room: string;
  /** How many bench clients are in `room` in total (across every process and server). */
  roomSize: number;
  /** Server this client connects to (ws://…); default: the `connect` request's `url`. */
  url?: string;
}

/** A request from the orchestrator. */
export type Request =
  | { id: number; cmd: "connect"; url: string; clients: ClientSpec[]; concurrency: number }
  | {
    id: number;
    cmd: "run";
    /** Wall-clock ms (`performance.timeOrigin + performance.now()`) when sending starts. */
    startAt: number;
    /** Messages sent before this are warm-up: delivered but not measured. */
    measureFrom: number;
    /** Sending stops here; the measured window is [measureFrom, stopAt). */
    stopAt: number;
    /** Messages per second this process sends, spread round-robin over `senders`. */
    rate: number;
    senders: string[];
    textBytes: number;
  }
  | { id: number; cmd: "stats" }
  | { id: number; cmd: "collect" }
  | { id: number; cmd: "exit" };

/** A request before the transport numbers it. */
export type RequestBody = Request extends infer R ? R extends unknown ? Omit<R, "id"> : never
  : never;

/** Counters a load generator keeps for the current run. */
export interface Counters {
  /** Clients that completed hello and join. */
  ready: number;
  /** Connections or handshakes that failed during `connect`. */
  failed: number;
  /** Clients whose connection ended after they were ready, by close code ("none" if no code). */
  closes: Record<string, number>;
  /** Messages sent since the last collect. */
  sent: number;
  /** Messages sent inside the measured window. */
  sentInWindow: number;
  /** Deliveries expected for those: each counts once per member of the sender's room. */
  expected: number;
  /** Stamped messages received since the last collect (any send time). */
  delivered: number;
  /** Received messages that were sent inside the measured window (the latency samples). */
  deliveredOfWindow: number;
  /** Messages received while the window was open (for throughput). */
  deliveredDuringWindow: number;
  /** Text frames received since the last collect (a frame may batch several messages). */
  frames: number;
  /** Socket reads that returned data since the last collect. */
  reads: number;
  /** Bytes read from all sockets since the process started. */
  bytesRead: number;
  /**
   * Message lines a client got a second time (by seq; each client must see each seq once, in
   * order: docs/protocol.md). They count here only, not as deliveries.
   */
  seqRepeated: number;
  /** Of those, lines that were the client's own message (its echo). */
  seqRepeatedOwn: number;
  /** Lines that arrived after a higher seq, for the first time (out of order). */
  seqLate: number;
  /** Seqs a client jumped over when a higher one arrived; minus `seqLate`, never arrived. */
  seqSkipped: number;
  /** `say`s the server refused as busy (`rate_limited` errors to the senders). */
  refused: number;
}

/** A reply to one request. */
/** Counters at zero: a generator's fresh window, and the start of a sum over generators. */
export function emptyCounters(): Counters {
  return {
    ready: 0,
    failed: 0,
    closes: {},
    sent: 0,
    sentInWindow: 0,
    expected: 0,
    delivered: 0,
    deliveredOfWindow: 0,
    deliveredDuringWindow: 0,
    frames: 0,
    reads: 0,
    bytesRead: 0,
    seqRepeated: 0,
    seqRepeatedOwn: 0,
    seqLate: 0,
    seqSkipped: 0,
    refused: 0,
  };
}

export type Reply =
  | {
    id: number;
    ok: true;
    counters: Counters;
    /** Send → receive latency of the window's deliveries (collect only). */
    histogram?: SparseHistogram;
    /** The same split at the server's `ts`: send → server took it (whole ms). */
    toServer?: SparseHistogram;
    /** ... and server took it → received. */
    fromServer?: SparseHistogram;
  }
  | { id: number; ok: false; error: string };
