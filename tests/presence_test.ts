/**
 * Presence that scales, specified on the hub with fake sockets and a fake clock: small rooms hear
 * one line per arrival and departure; large rooms hear one batched `presence` frame per interval;
 * `joined` carries a bounded first page of the member list and `members` pages through the rest.
 */
import assert from "node:assert/strict";
import { MAX_PRESENCE_NAMES, PRESENCE_BATCH_MEMBERS, PRESENCE_INTERVAL_MS } from "../ops/limits.ts";
import { MAX_JOINED_MEMBERS, MAX_MEMBERS_PAGE, nameFold } from "../protocol/protocol.ts";
import { join, type Rig, rig, settle, wrapStore } from "./hub_rig.ts";
import { MemoryStore } from "../store/store.ts";
import type { FakeSocket } from "./fakes.ts";
import type { Client } from "../client.ts";

/** Connects and joins `count` members named `${prefix}0001`…, then delivers what is due. */
async function fill(r: Rig, count: number, prefix = "m") {
  const members: { client: Client; socket: FakeSocket; name: string }[] = [];
  for (let i = 1; i <= count; i++) {
    const name = `${prefix}${String(i).padStart(4, "0")}`;
    const m = r.connect(name);
    join(m.client);
    members.push({ ...m, name });
  }
  await settle();
  r.flush();
  return members;
}

const members = (c: Client, after?: string, limit?: number) =>
  c.receive(JSON.stringify({ type: "members", room: "general", after, limit }));

Deno.test("a small room hears one join and one leave line per person, up to the threshold", async () => {
  const r = rig();
  const [watcher, ...rest] = await fill(r, PRESENCE_BATCH_MEMBERS);
  assert.equal(watcher.socket.of("join").length, PRESENCE_BATCH_MEMBERS - 1);
  assert.equal(watcher.socket.of("presence").length, 0);
  rest[0].client.receive(JSON.stringify({ type: "leave", room: "general" }));
  r.flush();
  assert.deepEqual(watcher.socket.of("leave").map((m) => m.user), [rest[0].name]);
  await r.done();
});

Deno.test("past the threshold, arrivals reach members as one presence frame per interval, with the count", async () => {
  const r = rig();
  const [watcher] = await fill(r, PRESENCE_BATCH_MEMBERS);
  const joinLines = watcher.socket.of("join").length;
  // The first arrival past the threshold goes out on the next turn: no frame was sent before.
  const first = r.connect("late0000");
  join(first.client);
  await settle();
  r.tick(0);
  const frames = () => watcher.socket.of("presence");
  assert.equal(
    watcher.socket.of("join").length,
    joinLines,
    "no per-person line past the threshold",
  );
  assert.deepEqual(frames().map((f) => [f.joined, f.left, f.count]), [[
    ["late0000"],
    [],
    PRESENCE_BATCH_MEMBERS + 1,
  ]]);
  // Fifty more within the interval: nothing until it has passed, then one frame naming all fifty.
  const more = await fill(r, 50, "late");
  r.tick(PRESENCE_INTERVAL_MS - 1);
  assert.equal(frames().length, 1);
  r.tick(1);
  assert.equal(frames().length, 2);
  const second = frames()[1];
  assert.deepEqual(second.joined.toSorted(), more.map((m) => m.name));
  assert.deepEqual(second.left, []);
  assert.equal(second.count, PRESENCE_BATCH_MEMBERS + 51);
  assert.equal(second.more, undefined);
  // The joiners got the frame too, and no per-person lines for each other.
  assert.equal(more[0].socket.of("join").length, 0);
  await r.done();
});

Deno.test("a presence frame states where each changed name stands now: one who came and went is in left", async () => {
  const r = rig();
  const [watcher] = await fill(r, PRESENCE_BATCH_MEMBERS + 1);
  r.tick(PRESENCE_INTERVAL_MS);
  const before = watcher.socket.of("presence").length;
  const visitor = r.connect("visitor");
  join(visitor.client);
  await settle();
  visitor.client.close(1000, "bye", "client");
  r.tick(PRESENCE_INTERVAL_MS);
  const frames = watcher.socket.of("presence").slice(before);
  assert.equal(frames.length, 1);
  assert.deepEqual([frames[0].joined, frames[0].left], [[], ["visitor"]]);
  assert.equal(frames[0].count, PRESENCE_BATCH_MEMBERS + 1);
  await r.done();
});

Deno.test("a frame names at most MAX_PRESENCE_NAMES people and says more when more changed", async () => {
  const r = rig();
  const [watcher] = await fill(r, PRESENCE_BATCH_MEMBERS + 1);
  r.tick(PRESENCE_INTERVAL_MS);
  const before = watcher.socket.of("presence").length;
  await fill(r, MAX_PRESENCE_NAMES + 20, "crowd");
  r.tick(PRESENCE_INTERVAL_MS);
  const frames = watcher.socket.of("presence").slice(before);
  assert.equal(frames.length, 1);
  assert.equal(frames[0].joined.length + frames[0].left.length, MAX_PRESENCE_NAMES);
  assert.equal(frames[0].more, true);
  assert.equal(frames[0].count, PRESENCE_BATCH_MEMBERS + 1 + MAX_PRESENCE_NAMES + 20);
  await r.done();
});

Deno.test("a large room that shrinks to the threshold sends its pending frame before per-person lines", async () => {
  const r = rig();
  const all = await fill(r, PRESENCE_BATCH_MEMBERS + 2);
  r.tick(PRESENCE_INTERVAL_MS);
  const watcher = all[0];
  const before = watcher.socket.messages.length;
  all[all.length - 1].client.close(1000, "bye", "client"); // 201 left: batched, pending
  all[all.length - 2].client.close(1000, "bye", "client"); // 200 left: small again
  r.flush();
  const after = watcher.socket.messages.slice(before).filter((m) =>
    m.type === "presence" || m.type === "leave"
  );
  assert.deepEqual(after.map((m) => m.type), ["presence", "leave"]);
  assert.deepEqual(after[0].left, [all[all.length - 1].name]);
  assert.equal(after[1].user, all[all.length - 2].name);
  await r.done();
});

Deno.test("joined carries the first MAX_JOINED_MEMBERS names in reading order and the count; members pages through the rest once", async () => {
  const r = rig();
  const crowd = await fill(r, 250);
  const bob = r.connect("Bob");
  join(bob.client);
  await settle();
  const [joined] = bob.socket.of("joined");
  // In reading order: folded spelling (NFKC, lower case), not the lookalike key.
  const everyone = [...crowd.map((m) => m.name), "Bob"].sort((a, b) =>
    nameFold(a) < nameFold(b) ? -1 : 1
  );
  assert.equal(joined.count, 251);
  assert.deepEqual(joined.members, everyone.slice(0, MAX_JOINED_MEMBERS));
  const seen: string[] = [];
  let after: string | undefined = undefined;
  for (let page = 0; page < 10; page++) {
    members(bob.client, after, 60);
    const reply = bob.socket.of("members").at(-1)!;
    assert.equal(reply.count, 251);
    seen.push(...reply.members);
    after = reply.next;
    if (after === undefined) break;
  }
  assert.deepEqual(seen, everyone, "every member once, in order");
  members(bob.client, undefined, MAX_MEMBERS_PAGE + 1);
  members(bob.client, "not a name!");
  const outsider = r.connect("outsider");
  await settle();
  members(outsider.client);
  assert.deepEqual(bob.socket.of("error").map((e) => e.code), ["bad_request", "bad_request"]);
  assert.deepEqual(outsider.socket.of("error").map((e) => e.code), ["not_in_room"]);
  await r.done();
});

Deno.test("a storm of joins with the same since shares one store read, and each gets exactly what it missed", async () => {
  const store = new MemoryStore();
  store.append(
    Array.from({ length: 30 }, (_, i) => ({ room: "general", from: "old", text: `t${i}`, ts: 1 })),
  );
  let reads = 0;
  const r = rig(wrapStore(store, {
    read(room, range) {
      reads++;
      return store.read(room, range);
    },
  }));
  const storm = Array.from({ length: 300 }, (_, i) => r.connect(`s${i}`));
  for (const m of storm) join(m.client, "general", 20);
  await settle();
  r.flush();
  assert.equal(reads, 1, "one read for 300 joins");
  for (const m of storm) {
    const [joined] = m.socket.of("joined");
    assert.deepEqual(
      joined.history.map((h: { seq: number }) => h.seq),
      Array.from({ length: 10 }, (_, i) => 21 + i),
    );
  }
  await r.done();
});
