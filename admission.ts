/**
 * Admission control before the WebSocket upgrade: open connections per client address and a
 * handshake rate per address. It owns the per-address state; the server asks it before upgrading
 * and tells it when a connection ends.
 */
import { type Rate, TokenBucket } from "./rate_limit.ts";

/** Most addresses whose handshake buckets are remembered; idle full buckets are dropped first. */
export const MAX_TRACKED_ADDRESSES = 100_000;

/** Why an address may not open another connection now. */
export type Refusal = "too_many_connections" | "handshake_rate";

/** Options for {@linkcode Admission}. */
export interface AdmissionOptions {
  /** Open connections per address at most; 0 for no limit. */
  maxPerAddress: number;
  /** New connections per address; null for no limit. */
  handshakeRate: Rate | null;
  /** @default Date.now */
  now?: () => number;
}

/** Counts open connections and recent handshakes per client address. */
export class Admission {
  #options: AdmissionOptions;
  #now: () => number;
  #open = new Map<string, number>();
  #buckets = new Map<string, TokenBucket>();

  constructor(options: AdmissionOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Reserves a connection slot for `address`, or says why not. Call `release` when it ends. */
  admit(address: string): Refusal | null {
    const open = this.#open.get(address) ?? 0;
    const max = this.#options.maxPerAddress;
    if (max > 0 && open >= max) return "too_many_connections";
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
    return null;
  }

  /** Frees the slot `admit` reserved. */
  release(address: string): void {
    const open = this.#open.get(address) ?? 0;
    if (open <= 1) this.#open.delete(address);
    else this.#open.set(address, open - 1);
  }

  /** Open connections from `address` now. */
  openFrom(address: string): number {
    return this.#open.get(address) ?? 0;
  }

  /** Drops buckets that have refilled (their address is quiet); a full map must not block admits. */
  #forgetIdle(rate: Rate): void {
    for (const [address, bucket] of this.#buckets) {
      if (bucket.tokens >= rate.burst - 1) this.#buckets.delete(address);
    }
    if (this.#buckets.size >= MAX_TRACKED_ADDRESSES) this.#buckets.clear();
  }
}
