/**
 * A fixed-bucket latency histogram: 0.1 ms buckets up to 10 s, so millions of samples cost one
 * array increment each and merge across processes by adding counts.
 */

/** Width of one bucket, in milliseconds. */
export const BUCKET_MS = 0.1;
/** Latencies at or above this land in the last bucket, in milliseconds. */
export const HISTOGRAM_RANGE_MS = 10_000;
const BUCKETS = Math.round(HISTOGRAM_RANGE_MS / BUCKET_MS) + 1;

/** A histogram sent between processes: `[bucket, count]` pairs for non-empty buckets. */
export interface SparseHistogram {
  buckets: [number, number][];
  count: number;
  maxMs: number;
}

/** Latency summary in milliseconds; each percentile is the upper edge of its bucket. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Counts latencies in 0.1 ms buckets and keeps the exact maximum. */
export class Histogram {
  #counts = new Uint32Array(BUCKETS);
  #count = 0;
  #maxMs = 0;

  /** Number of samples recorded. */
  get count(): number {
    return this.#count;
  }

  /** Records one latency; negative values (clock skew between processes) count as 0. */
  record(ms: number): void {
    const bucket = ms <= 0 ? 0 : ms >= HISTOGRAM_RANGE_MS ? BUCKETS - 1 : (ms / BUCKET_MS) | 0;
    this.#counts[bucket]++;
    this.#count++;
    if (ms > this.#maxMs) this.#maxMs = ms;
  }

  /** Records `n` samples that share one latency (all lines of one received frame). */
  recordMany(ms: number, n: number): void {
    const bucket = ms <= 0 ? 0 : ms >= HISTOGRAM_RANGE_MS ? BUCKETS - 1 : (ms / BUCKET_MS) | 0;
    this.#counts[bucket] += n;
    this.#count += n;
    if (ms > this.#maxMs) this.#maxMs = ms;
  }

  /** Adds every sample of `other` to this histogram. */
  merge(other: SparseHistogram): void {
    for (const [bucket, n] of other.buckets) this.#counts[bucket] += n;
    this.#count += other.count;
    if (other.maxMs > this.#maxMs) this.#maxMs = other.maxMs;
  }

  /** The value below which fraction `q` of samples fall (upper bucket edge), in ms. */
  quantile(q: number): number {
    if (this.#count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i];
      if (seen >= rank) return Math.min((i + 1) * BUCKET_MS, this.#maxMs);
    }
    return this.#maxMs;
  }

  /** p50/p90/p99/p99.9/max of everything recorded. */
  summary(): LatencySummary {
    return {
      count: this.#count,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
      max: this.#count === 0 ? NaN : this.#maxMs,
    };
  }

  /** The non-empty buckets, for sending to another process. */
  toSparse(): SparseHistogram {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.#counts[i] !== 0) buckets.push([i, this.#counts[i]]);
    return { buckets, count: this.#count, maxMs: this.#maxMs };
  }

  /** Forgets every sample. */
  reset(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#maxMs = 0;
  }
}
