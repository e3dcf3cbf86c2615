/**
 * Admission control before the WebSocket upgrade: open connections per client address, those of
 * them that have not said hello yet, and a handshake rate per address. It owns the per-address
 * state; the server asks it before upgrading, tells it when a connection says hello, and when the
 * connection has really ended (its socket's close event, not the server's close call: a closed
 * socket whose peer never answers stays open, with what Deno holds for it).
 */
import { type Rate, TokenBucket } from "./rate_limit.ts";

/** Most addresses whose handshake buckets are remembered; idle full buckets are dropped first. */
export const MAX_TRACKED_ADDRESSES = 100_000;

/** Why an address may not open another connection now. */
export type Refusal = "too_many_connections" | "too_many_pending" | "handshake_rate";

/** Options for {@linkcode Admission}. */
export interface AdmissionOptions {
  /** Open connections per address at most; 0 for no limit. */
  maxPerAddress: number;
  /** Of those, connections that have not said hello yet; 0 for no limit. @default 0 */
  maxPendingPerAddress?: number;
  /** New connections per address; null for no limit. */
  handshakeRate: Rate | null;
  /** @default Date.now */
  now?: () => number;
}

/** Counts open and not yet greeted connections, and recent handshakes, per client address. */
export class Admission {
  #options: AdmissionOptions;
  #now: () => number;
  #open = new Map<string, number>();
  #pending = new Map<string, number>();
  #buckets = new Map<string, TokenBucket>();

  constructor(options: AdmissionOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Reserves a connection slot for `address`, pending until `greeted`, or says why not. Call
   * `release` when the connection has ended.
   */
  admit(address: string): Refusal | null {
    const open = this.#open.get(address) ?? 0;
    const max = this.#options.maxPerAddress;
    if (max > 0 && open >= max) return "too_many_connections";
    const pending = this.#pending.get(address) ?? 0;
    const maxPending = this.#options.maxPendingPerAddress ?? 0;
    if (maxPending > 0 && pending >= maxPending) return "too_many_pending";
    const rate = this.#options.handshakeRate;
    if (rate !== null) {
      let bucket = this.#buckets.get(address);
      if (bucket === undefined) {
        if (this.#buckets.size >= MAX_TRACKED_ADDRESSES) this.#forgetIdle(rate);
        this.#buckets.set(address, bucket = new TokenBucket(rate, this.#now));
      }
      if (!bucket.take()) return "handshake_rate";
    }
    this.#open.set(address, open + 1);
    this.#pending.set(address, pending + 1);
    return null;
  }

  /** A connection from `address` said hello: its slot is no longer pending. */
  greeted(address: string): void {
    decrement(this.#pending, address);
  }

  /** Frees the slot `admit` reserved; `pending` when the connection never said hello. */
  release(address: string, pending: boolean): void {
    decrement(this.#open, address);
    if (pending) decrement(this.#pending, address);
  }

  /** Open connections from `address` now. */
  openFrom(address: string): number {
    return this.#open.get(address) ?? 0;
  }

  /**
   * True when `address` has as many connections that have not said hello as it may, counting
   * `extra` more on their way.
   */
  pendingFull(address: string, extra = 0): boolean {
    const max = this.#options.maxPendingPerAddress ?? 0;
    return max > 0 && (this.#pending.get(address) ?? 0) + extra >= max;
  }

  /** Connections from `address` that have not said hello. */
  pendingFrom(address: string): number {
    return this.#pending.get(address) ?? 0;
  }

  /** Drops buckets that have refilled (their address is quiet); a full map must not block admits. */
  #forgetIdle(rate: Rate): void {
    for (const [address, bucket] of this.#buckets) {
      if (bucket.tokens >= rate.burst - 1) this.#buckets.delete(address);
    }
    if (this.#buckets.size >= MAX_TRACKED_ADDRESSES) this.#buckets.clear();
  }
}

function decrement(counts: Map<string, number>, address: string): void {
  const n = counts.get(address) ?? 0;
  if (n <= 1) counts.delete(address);
  else counts.set(address, n - 1);
}
