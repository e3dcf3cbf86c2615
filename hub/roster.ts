/**
 * A room's member names in name-key order (`nameKey`), for the member count and for pages of the
 * list (`joined`, `members`). On one instance it lists the room's members here; in a cluster it
 * lists every instance's, loaded once from the cluster and kept by the presence lines that follow.
 * Sorted keys in an array: an insert or removal moves at most the array (microseconds at 10,000
 * names), a page is one binary search and a slice.
 */
import { nameKey } from "../protocol/protocol.ts";

/** The names in a room, sorted by key. */
export class Roster {
  #keys: string[] = [];
  #names = new Map<string, string>();

  /** How many names are listed. */
  get count(): number {
    return this.#keys.length;
  }

  has(name: string): boolean {
    return this.#names.has(nameKey(name));
  }

  /** Lists `name`; false when its key was listed already (the name shown is updated). */
  add(name: string): boolean {
    const key = nameKey(name);
    const had = this.#names.has(key);
    this.#names.set(key, name);
    if (had) return false;
    this.#keys.splice(this.#after(key), 0, key);
    return true;
  }

  /** Unlists `name`; false when it was not listed. */
  remove(name: string): boolean {
    const key = nameKey(name);
    if (!this.#names.delete(key)) return false;
    this.#keys.splice(this.#after(key) - 1, 1);
    return true;
  }

  /** Replaces every name with `names`. */
  reset(names: Iterable<string>): void {
    this.#names.clear();
    for (const name of names) this.#names.set(nameKey(name), name);
    this.#keys = [...this.#names.keys()].sort();
  }

  /**
   * Up to `limit` names after `after` (by key, exclusive; from the start without it), and the
   * `after` of the next page when more follow.
   */
  page(after: string | undefined, limit: number): { names: string[]; next?: string } {
    const start = after === undefined ? 0 : this.#after(nameKey(after));
    const keys = this.#keys.slice(start, start + limit);
    const names = keys.map((k) => this.#names.get(k)!);
    return start + limit < this.#keys.length ? { names, next: names[names.length - 1] } : { names };
  }

  /** The index of the first key greater than `key`. */
  #after(key: string): number {
    let lo = 0, hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#keys[mid] <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
