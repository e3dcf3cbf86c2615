/** A room's roster (hub/roster.ts): one entry per member by name key, listed in reading order. */
import assert from "node:assert/strict";
import { Roster } from "../hub/roster.ts";

Deno.test("names are listed as people read them, not by their lookalike keys", () => {
  const r = new Roster();
  // The key of "mary" spells "rnary" and that of "m00002" "rnoooo2": sorted by key, both misplace.
  for (const name of ["quinn", "mary", "Alice", "m00010", "m00002", "bob"]) r.add(name);
  assert.deepEqual(r.page(undefined, 10).names, [
    "Alice",
    "bob",
    "m00002",
    "m00010",
    "mary",
    "quinn",
  ]);
  assert.deepEqual(r.page("bob", 2), { names: ["m00002", "m00010"], next: "m00010" });
  assert.deepEqual(r.page("m00010", 10), { names: ["mary", "quinn"] });
});

Deno.test("a lookalike of a listed name is the same member: listed once, in its newest spelling", () => {
  const r = new Roster();
  assert.equal(r.add("alice"), true);
  assert.equal(r.add("ALICE"), false);
  assert.equal(r.add("аlice"), false, "Cyrillic а");
  assert.equal(r.count, 1);
  assert.deepEqual(r.page(undefined, 10).names, ["аlice"]);
  assert.equal(r.remove("Alice"), true);
  assert.equal(r.count, 0);
  assert.equal(r.remove("alice"), false);
  r.reset(["bob", "BOB", "carol"]);
  assert.deepEqual(r.page(undefined, 10).names, ["BOB", "carol"]);
});
