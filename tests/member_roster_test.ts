/**
 * The page's member roster (static/state.js `Roster`) as pure logic, against a fake server list in
 * the server's own order (hub/roster.ts's `sortKey`; members are one by `nameKey`): what it asks for, where pages go,
 * and how presence and a refetch after `more` keep it equal to the server's list.
 */
import assert from "node:assert/strict";
import { nameKey } from "../protocol/protocol.ts";
import { sortKey } from "../hub/roster.ts";
import { MAX_MEMBERS_PAGE } from "../protocol/protocol.ts";

interface Roster {
  count: number;
  names: string[];
  tail: string;
  complete: boolean;
  asked: string[];
  readonly rows: number;
  readonly held: number;
  at(row: number): string | undefined;
  reset(names: string[], count: number | undefined, me: string): void;
  page(after: string, names: string[], count: number, next: string | undefined): void;
  join(name: string, counted?: boolean): boolean;
  leave(name: string, counted?: boolean): boolean;
  stale(): void;
  want(first: number, end: number): { after: string; limit: number } | null;
}
const { Roster: RosterClass }: { Roster: new () => Roster } = await import(
  new URL("../static/state.js", import.meta.url).href
);

/** A room's members in the server's order, answering `members` pages as hub/roster.ts does. */
class FakeServer {
  list: string[];
  constructor(names: string[]) {
    this.list = [...names].sort((a, b) => sortKey(a) < sortKey(b) ? -1 : 1);
  }
  change(joined: string[], left: string[]) {
    const gone = new Set(left.map(nameKey));
    this.list = this.list.filter((n) => !gone.has(nameKey(n))).concat(joined)
      .sort((a, b) => sortKey(a) < sortKey(b) ? -1 : 1);
  }
  page(after: string, limit: number) {
    const start = after ? this.list.findIndex((n) => sortKey(n) > sortKey(after)) : 0;
    const names = start < 0 ? [] : this.list.slice(start, start + limit);
    const more = start >= 0 && start + limit < this.list.length;
    return { names, next: more ? names.at(-1) : undefined };
  }
}

const crowd = (n: number) => Array.from({ length: n }, (_, i) => `m${String(i).padStart(5, "0")}`);

/** Joins as alice: the first 100 names and the count. */
function joined(server: FakeServer): Roster {
  const r = new RosterClass();
  r.reset(server.list.slice(0, 100), server.list.length, "alice");
  return r;
}

/** Answers what `r` wants for rows `first` to `end` until it wants nothing; returns the asks. */
function serve(r: Roster, server: FakeServer, first: number, end: number) {
  const asks: { after: string; limit: number }[] = [];
  for (let w; (w = r.want(first, end));) {
    assert.ok(asks.length < 100, "it never stops asking");
    asks.push(w);
    const { names, next } = server.page(w.after, w.limit);
    r.page(w.after, names, server.list.length, next);
  }
  return asks;
}

/** Every row the roster shows, the reader's first. */
const rows = (r: Roster) => Array.from({ length: r.rows }, (_, i) => r.at(i));
const others = (server: FakeServer) => server.list.filter((n) => n !== "alice");

Deno.test("A roster holds joined's page and the count, and asks for nothing the view does not need", () => {
  const server = new FakeServer(["alice", ...crowd(1999)]);
  const r = joined(server);
  assert.equal(r.rows, 2000);
  assert.equal(r.at(0), "alice");
  assert.equal(r.complete, false);
  assert.equal(r.want(0, 30), null);
  assert.equal(r.at(150), undefined, "a row past the pages held is not known yet");
});

Deno.test("Scrolled to the end, a roster pages on from the last name it holds, up to 500 at a time", () => {
  const server = new FakeServer(["alice", ...crowd(1999)]);
  const r = joined(server);
  const asks = serve(r, server, 1970, 2000);
  assert.equal(asks[0].after, server.list[99]);
  assert.ok(asks.every((a) => a.limit <= MAX_MEMBERS_PAGE));
  assert.equal(asks.length, 4, JSON.stringify(asks));
  assert.deepEqual(rows(r), ["alice", ...others(server)]);
  assert.equal(r.complete, true);
});

Deno.test("A roster keeps the server's order: reading order, not the lookalike key that would put m00010 first", () => {
  // The server sorts by the folded spelling (NFKC, lower case), as the page's own key does:
  // m00002 before m00010, although its lookalike key (0 to o, 1 to l) orders them the other way.
  const server = new FakeServer(["alice", ...crowd(600)]);
  assert.ok(server.list.indexOf("m00002") < server.list.indexOf("m00010"));
  assert.ok(nameKey("m00010") < nameKey("m00002"), "the server's lookalike key");
  const r = joined(server);
  serve(r, server, 580, 601);
  assert.deepEqual(rows(r), ["alice", ...others(server)]);
  r.leave("m00010");
  server.change([], ["m00010"]);
  assert.deepEqual(rows(r), ["alice", ...others(server)]);
});

Deno.test("Joins and leaves count; a join past the pages held is left for the page that brings it", () => {
  const server = new FakeServer(["alice", ...crowd(1999)]);
  const r = joined(server);
  assert.equal(r.join("zed"), true);
  assert.equal(r.count, 2001);
  assert.ok(!r.names.includes("zed"));
  assert.equal(r.join("aaron"), true, "before the last name held: it is placed");
  assert.equal(r.at(1), "aaron");
  assert.equal(r.join("aaron"), false, "listed already: nothing changes");
  assert.equal(r.count, 2002);
  assert.equal(r.leave("aaron"), true);
  assert.equal(r.count, 2001);
  assert.equal(r.at(1), server.list[1]);
});

Deno.test("After a frame with more, the rows in view are fetched again and match the server", () => {
  const server = new FakeServer(["alice", ...crowd(1999)]);
  const r = joined(server);
  serve(r, server, 1970, 2000);
  // 48 leave and 30 join near the end, unnamed: only the count is told.
  server.change(crowd(30).map((n) => `z${n}`), others(server).slice(-50, -2));
  r.count = server.list.length;
  r.stale();
  const view = [r.rows - 30, r.rows] as const;
  assert.ok(serve(r, server, ...view).length > 0, "the rows in view were asked for again");
  const shown = rows(r).slice(...view), at = server.list.indexOf(shown[0]!);
  assert.deepEqual(shown, server.list.slice(at, at + shown.length));
  // Scrolling through the rest fetches the stale rows above too.
  for (let first = 0; first < r.rows; first += 20) serve(r, server, first, first + 30);
  assert.deepEqual(rows(r), ["alice", ...others(server)]);
  assert.equal(r.rows, server.list.length);
});

Deno.test("A page whose after is no longer held is dropped, and the roster asks again", () => {
  const server = new FakeServer(["alice", ...crowd(1999)]);
  const r = joined(server);
  r.stale();
  const w = r.want(10, 40)!;
  r.asked.push(w.after);
  const answer = server.page(w.after, w.limit);
  r.leave(w.after);
  server.change([], [w.after]);
  r.asked.shift();
  r.page(w.after, answer.names, server.list.length, answer.next);
  serve(r, server, 10, 40);
  assert.deepEqual(rows(r).slice(10, 40), ["alice", ...others(server)].slice(10, 40));
});
