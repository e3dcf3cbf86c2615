/** Counts the server's "busy, send it again" refusals in a received payload, without JSON. */

const NEEDLE = new TextEncoder().encode('"code":"rate_limited"');
const FIRST = NEEDLE[0];

/**
 * How many `rate_limited` error lines `bytes[start..end)` holds (each line has its code once; a
 * text cannot hold the needle unescaped, since its quotes arrive as `\"`).
 */
export function countRefusals(bytes: Uint8Array, start: number, end: number): number {
  let found = 0;
  const last = end - NEEDLE.length;
  for (let i = start; i <= last; i++) {
    if (bytes[i] !== FIRST) continue;
    let j = 1;
    while (j < NEEDLE.length && bytes[i + j] === NEEDLE[j]) j++;
    if (j === NEEDLE.length) {
      found++;
      i += NEEDLE.length - 1;
    }
  }
  return found;
}
