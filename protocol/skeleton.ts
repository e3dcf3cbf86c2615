/**
 * The Unicode TR39 confusable skeleton of a string: two strings that look alike have equal
 * skeletons (https://www.unicode.org/reports/tr39/#Confusable_Detection).
 *
 * The table is Unicode's confusables.txt as the npm package `unhomoglyph` ships it: one JSON object
 * from each single code point to its prototype (6311 entries, about 100 KB). It is a static JSON
 * import, so `deno compile` embeds it and nothing is read at run time; lookups go straight to the
 * parsed object, with no index built beside it. A skeleton is for comparing only: it mixes scripts
 * and is never shown.
 *
 * @example
 * ```ts
 * import { skeleton } from "./skeleton.ts";
 * skeleton("раураl") === skeleton("paypal"); // true: Cyrillic р, а and у
 * ```
 */
// The full npm specifier, not a deno.json import: protocol.ts (and so the store) imports this
// module, and a script run without this repository's deno.json (tests/sqlite_store_test.ts
// runs one) must still resolve it. deno.lock pins its integrity.
import confusables from "unhomoglyph/data.json" with { type: "json" };

/** The Unicode version of confusables.txt in the table (unhomoglyph 1.0.6's CHANGELOG). */
export const CONFUSABLES_UNICODE_VERSION = "13.0.0";

/** Each code point confusables.txt maps, to its prototype. */
export const PROTOTYPES: Readonly<Record<string, string>> = confusables;

/** NFD, then each code point replaced by its prototype, then NFD again, as TR39 defines it. */
export function skeleton(s: string): string {
  let out = "";
  for (const c of s.normalize("NFD")) out += Object.hasOwn(PROTOTYPES, c) ? PROTOTYPES[c] : c;
  return out.normalize("NFD");
}
