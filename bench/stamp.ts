/**
 * The send timestamp every bench text carries, and the scan that finds it again in raw bytes.
 *
 * A text looks like `~T1732200000000.123~xxxx…` (padded to its size). `~` appears nowhere else
 * in the bench's traffic (names, rooms and JSON keys never contain it, and the scan only looks
 * inside frame payloads, never at frame headers), so counting `~T` finds exactly one delivery per
 * message line without splitting frames or parsing JSON.
 */

const TILDE = 0x7e;
const T = 0x54;
const DOT = 0x2e;
const ZERO = 0x30;

/** Builds a text of exactly `size` ASCII characters stamped with `sentAt` (ms, wall clock). */
export function stampText(sentAt: number, size: number): string {
  const head = `~T${sentAt.toFixed(3)}~`;
  return head.length >= size ? head : head + "x".repeat(size - head.length);
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const LOWER_T = 0x74;
const LOWER_S = 0x73;
const LOWER_E = 0x65;
const LOWER_Q = 0x71;
/** How far before a stamp `"seq":` may start, in bytes (past `,"from":"<name>","text":"`). */
const SEQ_LOOKBACK_BYTES = 200;

/**
 * The message's `seq` when `"seq":<digits>` appears shortly before the stamp at `at` (both
 * servers write `seq` before `from` and `text`), else NaN. Scans backwards, so it costs a few
 * dozen byte comparisons per message and never looks into the previous line's text.
 */
function seqBefore(bytes: Uint8Array, start: number, at: number): number {
  const stop = Math.max(start + 5, at - SEQ_LOOKBACK_BYTES);
  for (let j = at - 1; j >= stop; j--) {
    if (bytes[j] === 0x0a) return NaN; // the line began: no seq in it
    if (
      bytes[j] === COLON && bytes[j - 1] === QUOTE && bytes[j - 2] === LOWER_Q &&
      bytes[j - 3] === LOWER_E && bytes[j - 4] === LOWER_S && bytes[j - 5] === QUOTE
    ) {
      let seq = 0;
      let k = j + 1;
      for (; k < at; k++) {
        const c = bytes[k] - ZERO;
        if (c < 0 || c > 9) break;
        seq = seq * 10 + c;
      }
      return k > j + 1 ? seq : NaN;
    }
  }
  return NaN;
}

/**
 * Calls `visit(sentAt, serverTs, seq, at)` for every stamp in `bytes[start..end)` and returns how
 * many it found. `serverTs` is the message's `ts` (the server's clock when it took the say, whole
 * ms) when `"ts":` directly follows the text, as both servers write it; otherwise NaN. `seq` is the
 * message's room seq when `"seq":` precedes it on its line, otherwise NaN; `at` is the index of
 * the stamp (the first byte of the text).
 * The payload must be unmasked ASCII/UTF-8 JSON lines.
 */
export function scanStamps(
  bytes: Uint8Array,
  start: number,
  end: number,
  visit: (sentAt: number, serverTs: number, seq: number, at: number) => void,
): number {
  let found = 0;
  let i = start;
  while (i < end) {
    // A plain loop, not bytes.indexOf: indexOf cannot stop at `end`, and after the last stamp of
    // a frame it would scan the rest of the (much larger) read buffer.
    let at = i;
    while (at < end && bytes[at] !== TILDE) at++;
    if (at >= end) break;
    if (bytes[at + 1] !== T) {
      i = at + 1;
      continue;
    }
    let whole = 0;
    let frac = 0;
    let scale = 1;
    let j = at + 2;
    for (; j < end; j++) {
      const c = bytes[j];
      if (c === DOT || c === TILDE) break;
      whole = whole * 10 + (c - ZERO);
    }
    if (bytes[j] === DOT) {
      for (j++; j < end; j++) {
        const c = bytes[j];
        if (c === TILDE) break;
        frac = frac * 10 + (c - ZERO);
        scale *= 10;
      }
    }
    // After the stamp: padding, the closing quote, then `,"ts":<digits>`.
    let k = j + 1;
    while (k < end && bytes[k] !== QUOTE) k++;
    let serverTs = NaN;
    if (
      k + 6 < end && bytes[k + 1] === COMMA && bytes[k + 2] === QUOTE &&
      bytes[k + 3] === LOWER_T && bytes[k + 4] === LOWER_S && bytes[k + 5] === QUOTE &&
      bytes[k + 6] === COLON
    ) {
      serverTs = 0;
      for (k += 7; k < end; k++) {
        const c = bytes[k] - ZERO;
        if (c < 0 || c > 9) break;
        serverTs = serverTs * 10 + c;
      }
    }
    visit(whole + frac / scale, serverTs, seqBefore(bytes, start, at), at);
    found++;
    i = k;
  }
  return found;
}
