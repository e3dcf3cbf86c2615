/**
 * The exactly-once check of the large-room scenarios: after a reconnect with `since`, a client
 * must hold every seq after what it had, up to the room's last, once each and in order (history
 * and live lines together). Pure, so tests feed it a duplicated or missing seq.
 */

/** What one client got against what it should have, by seq. */
export interface SeqVerdict {
  /** Seqs in (after, through] it never got. */
  missing: number;
  /** Extra copies of seqs it got more than once. */
  duplicated: number;
  /** Seqs outside (after, through]: at or before what it had, or past the room's last. */
  outside: number;
  /** The first missing seq, or NaN. */
  firstMissing: number;
  /** The first seq it got twice, or NaN. */
  firstDuplicate: number;
}

/**
 * One client's seqs as they arrive, in constant memory: the server sends a room's lines in seq
 * order (history oldest first, then live), so anything but "the next seq" is a fault — a lower one
 * is a repeat (or a late line: a fault as well), a higher one leaves a gap.
 */
export class SeqLedger {
  #after: number;
  /** The next seq expected. */
  #next: number;
  #missing = 0;
  #duplicated = 0;
  #outside = 0;
  #firstMissing = NaN;
  #firstDuplicate = NaN;

  /** A client that had every seq up to `after` (its `since`, or the room's seq when it joined). */
  constructor(after: number) {
    this.#after = after;
    this.#next = after + 1;
  }

  /** Records one message line's seq. */
  see(seq: number): void {
    if (seq === this.#next) {
      this.#next++;
    } else if (seq > this.#next) {
      if (Number.isNaN(this.#firstMissing)) this.#firstMissing = this.#next;
      this.#missing += seq - this.#next;
      this.#next = seq + 1;
    } else if (seq <= this.#after) {
      this.#outside++;
    } else {
      this.#duplicated++;
      if (Number.isNaN(this.#firstDuplicate)) this.#firstDuplicate = seq;
    }
  }

  /** The verdict against the room's last seq `through`. */
  verdict(through: number): SeqVerdict {
    const tail = Math.max(0, through - (this.#next - 1));
    return {
      missing: this.#missing + tail,
      duplicated: this.#duplicated,
      outside: this.#outside + Math.max(0, this.#next - 1 - through),
      firstMissing: Number.isNaN(this.#firstMissing) && tail > 0 ? this.#next : this.#firstMissing,
      firstDuplicate: this.#firstDuplicate,
    };
  }
}

/** The verdict for `got`, every seq a client received in order since it had all up to `after`. */
export function checkSeqs(got: readonly number[], after: number, through: number): SeqVerdict {
  const ledger = new SeqLedger(after);
  for (const seq of got) ledger.see(seq);
  return ledger.verdict(through);
}

/** Verdicts summed over clients, with the first few faults named. */
export interface SeqTally {
  clients: number;
  /** Clients with nothing missing, doubled or outside. */
  exact: number;
  missing: number;
  duplicated: number;
  outside: number;
  /** Up to MAX_FAULT_EXAMPLES of "name: what", for the report. */
  examples: string[];
}

/** Faulty clients named in a tally. */
export const MAX_FAULT_EXAMPLES = 5;

/** An empty tally, the start of a sum. */
export function emptyTally(): SeqTally {
  return { clients: 0, exact: 0, missing: 0, duplicated: 0, outside: 0, examples: [] };
}

/** Adds one client's verdict to `tally`. */
export function addVerdict(tally: SeqTally, name: string, v: SeqVerdict): void {
  tally.clients++;
  tally.missing += v.missing;
  tally.duplicated += v.duplicated;
  tally.outside += v.outside;
  if (v.missing === 0 && v.duplicated === 0 && v.outside === 0) {
    tally.exact++;
  } else if (tally.examples.length < MAX_FAULT_EXAMPLES) {
    const what = [
      v.missing ? `${v.missing} missing (first ${v.firstMissing})` : "",
      v.duplicated ? `${v.duplicated} doubled (first ${v.firstDuplicate})` : "",
      v.outside ? `${v.outside} outside the range` : "",
    ].filter(Boolean).join(", ");
    tally.examples.push(`${name}: ${what}`);
  }
}

/** The sum of several processes' tallies. */
export function mergeTallies(all: readonly SeqTally[]): SeqTally {
  const total = emptyTally();
  for (const t of all) {
    total.clients += t.clients;
    total.exact += t.exact;
    total.missing += t.missing;
    total.duplicated += t.duplicated;
    total.outside += t.outside;
    total.examples.push(...t.examples.slice(0, MAX_FAULT_EXAMPLES - total.examples.length));
  }
  return total;
}
