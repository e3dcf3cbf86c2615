/**
 * A room's member names in the order people read them, for the member count and for pages of the
 * list (`joined`, `members`). On one instance it lists the room's members here; in a cluster it
 * lists every instance's, loaded once from the cluster and kept by the presence lines that follow.
 *
 * A name is one member by its key (`nameKey`, which folds lookalikes) but is sorted by its folded
 * spelling (`nameFold`: NFKC, lower case), so "mary" comes before "quinn" although its key spells
 * "rnary"; the key breaks ties, so the order is total. Sorted in an array: an insert or removal
 * moves at most the array (microseconds at 10,000 names), a page is one binary search and a slice.
 */
import { nameFold, nameKey } from "../protocol/protocol.ts";

/** Where a name sorts: its folded spelling, then its key (the order of every page). */
export function sortKey(name: string): string {
  return `${nameFold(name)}\u0000${nameKey(name)}`;
}

/** The names in a room, sorted as people read them. */
export class Roster {
  /** Sort keys, in order. */
  #order: string[] = [];
  /** By name key: the spelling last seen and its sort key. */
  #names = new Map<string, { name: string; sort: string }>();

  /** By sort key: the name key, to find the spelling. */
  #bySort = new Map<string, string>();

  /** How many names are listed. */
  get count(): number {
    return this.#order.length;
  }

  has(name: string): boolean {
    return this.#names.has(nameKey(name));
  }

  /** Lists `name`; false when its key was listed already (the name shown is updated). */
  add(name: string): boolean {
    const key = nameKey(name);
    const had = this.#names.get(key);
    if (had !== undefined) {
      // The same member in another spelling: shown as now spelt, sorted where it now sorts.
      this.#unlist(had.sort);
      this.#list(key, name);
      return false;
    }
    this.#list(key, name);
    return true;
  }

  /** Unlists `name`; false when it was not listed. */
  remove(name: string): boolean {
    const key = nameKey(name);
    const had = this.#names.get(key);
    if (had === undefined) return false;
    this.#names.delete(key);
    this.#unlist(had.sort);
    return true;
  }

  /** Replaces every name with `names`. */
  reset(names: Iterable<string>): void {
    this.#names.clear();
    this.#bySort.clear();
    for (const name of names) {
      const key = nameKey(name);
      const had = this.#names.get(key);
      if (had !== undefined) this.#bySort.delete(had.sort);
      const sort = sortKey(name);
      this.#names.set(key, { name, sort });
      this.#bySort.set(sort, key);
    }
    this.#order = [...this.#bySort.keys()].sort();
  }

  /**
   * Up to `limit` names after `after` (in this order, exclusive; from the start without it), and
   * the `after` of the next page when more follow.
   */
  page(after: string | undefined, limit: number): { names: string[]; next?: string } {
    const start = after === undefined ? 0 : this.#after(sortKey(after));
    const names = this.#order.slice(start, start + limit).map((sort) =>
      this.#names.get(this.#bySort.get(sort)!)!.name
    );
    return start + limit < this.#order.length
      ? { names, next: names[names.length - 1] }
      : { names };
  }

  #list(key: string, name: string): void {
    const sort = sortKey(name);
    this.#names.set(key, { name, sort });
    this.#bySort.set(sort, key);
    this.#order.splice(this.#after(sort), 0, sort);
  }

  #unlist(sort: string): void {
    this.#bySort.delete(sort);
    this.#order.splice(this.#after(sort) - 1, 1);
  }

  /** The index of the first sort key greater than `sort`. */
  #after(sort: string): number {
    let lo = 0, hi = this.#order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#order[mid] <= sort) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
