/** Rate limiting for one connection: a token bucket, and a window that spots a client that keeps flooding. */

/** A rate: `perSecond` tokens refill each second, up to `burst` saved. */
export interface Rate {
  perSecond: number;
  burst: number;
}

/**
 * A token bucket: each action takes one token; tokens refill continuously at `perSecond` up to `burst`.
 *
 * @example
 * ```ts
 * const bucket = new TokenBucket({ perSecond: 10, burst: 20 }, () => Date.now());
 * if (!bucket.take()) console.log("rate_limited");
 * ```
 */
export class TokenBucket {
  #rate: Rate;
  #now: () => number;
  #tokens: number;
  #last: number;

  constructor(rate: Rate, now: () => number = Date.now) {
    this.#rate = rate;
    this.#now = now;
    this.#tokens = rate.burst;
    this.#last = now();
  }

  /** Takes one token; false when none is left (the caller refuses the action). */
  take(): boolean {
    const now = this.#now();
    const elapsedMs = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(
      this.#rate.burst,
      this.#tokens + (elapsedMs * this.#rate.perSecond) / 1000,
    );
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Tokens left now (for tests and introspection). */
  get tokens(): number {
    return this.#tokens;
  }
}

/**
 * Counts events in a sliding window and reports when more than `max` fell within `windowMs`.
 * Keeps only the last `max + 1` timestamps, so memory is bounded whatever the client does.
 */
export class FloodWindow {
  #max: number;
  #windowMs: number;
  #now: () => number;
  #times: number[] = [];

  constructor(max: number, windowMs: number, now: () => number = Date.now) {
    this.#max = max;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Records one event; true when more than `max` events happened within the window. */
  record(): boolean {
    const now = this.#now();
    this.#times.push(now);
    if (this.#times.length > this.#max + 1) this.#times.shift();
    return this.#times.length > this.#max && now - this.#times[0] <= this.#windowMs;
  }
}

/** Parses `10/s,20` (rate per second, burst) or `off`; returns null when malformed. */
export function parseRate(text: string): Rate | "off" | null {
  if (text === "off") return "off";
  const m = /^(\d+(?:\.\d+)?)\/s(?:,(\d+))?$/.exec(text);
  if (!m) return null;
  const perSecond = Number(m[1]);
  const burst = m[2] === undefined ? Math.max(1, Math.ceil(perSecond)) : Number(m[2]);
  if (!(perSecond > 0) || !(burst >= 1)) return null;
  return { perSecond, burst };
}
