/**
 * Checks that one client gets each message of its room exactly once, in seq order, from the seqs
 * of the message lines it receives. Cheap enough for the load generators' hot path: one
 * comparison per line when all is well.
 */

/** Seqs remembered behind the highest one, to tell a repeat from a late first delivery. */
export const SEQ_WINDOW = 4096;
const MASK = SEQ_WINDOW - 1;

/** What one message line was, by its seq. */
export type SeqVerdict = "next" | "skipped" | "repeat" | "repeat-own" | "late";

/** One client's view of its room's seqs. */
export class SeqCheck {
  #last = NaN;
  /** seen[s & MASK] = 1 when seq s (within SEQ_WINDOW of #last) has arrived. */
  #seen = new Uint8Array(SEQ_WINDOW);
  /** `"from":"<name>","text":"`: the bytes before the stamp of this client's own messages. */
  #own: Uint8Array;
  /** Seqs jumped over when a higher one arrived (some may arrive later, as "late"). */
  skipped = 0;

  constructor(name: string) {
    this.#own = new TextEncoder().encode(`"from":${JSON.stringify(name)},"text":"`);
  }

  /**
   * Records `seq`, the seq of a line whose text starts at `bytes[at]`. "next" or "skipped" (some
   * seqs were jumped over, added to `skipped`) when it is above every seq seen before; "late" when
   * below but not seen before (or too old to tell, beyond SEQ_WINDOW); "repeat" when seen before,
   * "repeat-own" when that line was also this client's own message.
   */
  see(seq: number, bytes: Uint8Array, at: number): SeqVerdict {
    const last = this.#last;
    if (seq > last || last !== last) {
      let verdict: SeqVerdict = "next";
      if (seq > last + 1) {
        verdict = "skipped";
        this.skipped += seq - last - 1;
        const clear = Math.min(seq - last - 1, SEQ_WINDOW);
        for (let s = seq - clear; s < seq; s++) this.#seen[s & MASK] = 0;
      }
      this.#seen[seq & MASK] = 1;
      this.#last = seq;
      return verdict;
    }
    if (last - seq >= SEQ_WINDOW) return "late"; // too old to tell
    if (this.#seen[seq & MASK] === 0) {
      this.#seen[seq & MASK] = 1;
      return "late";
    }
    return this.#isOwn(bytes, at) ? "repeat-own" : "repeat";
  }

  #isOwn(bytes: Uint8Array, at: number): boolean {
    const own = this.#own;
    const from = at - own.length;
    if (from < 0) return false;
    for (let i = 0; i < own.length; i++) if (bytes[from + i] !== own[i]) return false;
    return true;
  }
}

/** A step's seq counts, summed over every client (see bench/control.ts `Counters`). */
export interface SeqCounts {
  /** Lines a client got a second time. */
  seqRepeated: number;
  /** Lines that arrived after a higher seq, for the first time. */
  seqLate: number;
  /** Seqs jumped over when a higher one arrived (late ones included). */
  seqSkipped: number;
}

/**
 * What broke "each client gets each message once, in seq order" (README, docs/protocol.md) in a
 * step, one phrase per kind of fault; empty when nothing did.
 */
export function seqFaults(c: SeqCounts): string[] {
  const faults: string[] = [];
  if (c.seqRepeated > 0) faults.push(`${c.seqRepeated} lines delivered twice`);
  if (c.seqLate > 0) faults.push(`${c.seqLate} lines out of order`);
  const missing = c.seqSkipped - c.seqLate;
  if (missing > 0) faults.push(`${missing} seqs never delivered`);
  return faults;
}
