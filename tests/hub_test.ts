/** The hub, specified with fake sockets, a manual flush scheduler and an injected clock. */
import assert from "node:assert/strict";
import { Client, FLOOD_REJECTIONS } from "../client.ts";
import {
  HARD_LIMIT_FACTOR,
  MAX_PENDING_BYTES_PER_SENDER,
  STALL_TIMEOUT_MS,
} from "../ops/limits.ts";
import { fakeClientOptions, FakeSocket } from "./fakes.ts";
import type { Cluster, ClusterListener } from "../hub/cluster.ts";
import { Hub } from "../hub.ts";
import {
  DRAIN_POLL_MS,
  MAX_RETRY_AFTER_MS,
  MIN_RETRY_AFTER_MS,
  PENDING_LINE_BYTES,
} from "../hub/fanout.ts";
import { type ChatMessage, messageLine, RESEND_WINDOW_MS } from "../protocol/protocol.ts";
import { MemoryStore, type NewMessage, type Store } from "../store/store.ts";

import { join, rig, say, settle, wrapStore } from "./hub_rig.ts";

Deno.test("a burst said in one turn reaches each member as one frame, in order, with dense seqs", async () => {
  const r = rig();
  const a = r.connect("alice"), b = r.connect("bob");
  join(a.client), join(b.client);
  await settle();
  r.flush();
  const before = b.socket.frames.length;
  for (let i = 0; i < 100; i++) say(a.client, `m${i}`);
  r.flush();
  const frames = b.socket.frames.slice(before);
  assert.equal(frames.length, 1);
  const lines = frames[0].split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((m) => m.text), Array.from({ length: 100 }, (_, i) => `m${i}`));
  assert.deepEqual(lines.map((m) => m.seq), Array.from({ length: 100 }, (_, i) => i + 1));
  // The sender gets the same frame: its echoes are its acknowledgements.
  assert.equal(a.socket.frames.at(-1), frames[0]);
  assert.equal(r.hub.stats.messagesDelivered >= 200, true);
  await r.done();
});

Deno.test("nothing is echoed before the store commits, and a burst is one append", async () => {
  const appends: number[] = [];
  const store = new MemoryStore();
  const counting = wrapStore(store, {
    append(batch: readonly NewMessage[]) {
      appends.push(batch.length);
      return store.append(batch);
    },
  });
  const r = rig(counting);
  const a = r.connect("alice");
  join(a.client);
  await settle();
  r.flush();
  const before = a.socket.frames.length;
  for (let i = 0; i < 10; i++) say(a.client, `m${i}`);
  assert.equal(a.socket.frames.length, before, "no echo before the flush commits");
  r.flush();
  assert.deepEqual(appends, [10]);
  await r.done();
});

Deno.test("the hub evicts a member whose socket stops draining, and the others keep receiving", async () => {
  const r = rig();
  const a = r.connect("alice"),
    b = r.connect("bob"),
    slow = r.connect("slow", { sendQueueBytes: 2000 });
  for (const c of [a, b, slow]) join(c.client);
  await settle();
  r.flush();
  slow.socket.stalled = true;
  for (let round = 0; round < 20; round++) {
    say(a.client, "x".repeat(200));
    r.flush();
    r.clock.now += 100;
  }
  assert.ok(
    slow.socket.bufferedAmount <= 2000 + 250,
    `room lines never take a socket past its budget (by more than one frame): ${slow.socket.bufferedAmount}`,
  );
  r.tick(STALL_TIMEOUT_MS + DRAIN_POLL_MS); // and then the traffic stops: the timer still judges it
  assert.equal(slow.socket.closeCode, 4008);
  assert.equal(slow.socket.closeReason, "slow consumer: stopped reading");
  assert.equal(slow.client.closed, true);
  assert.equal(r.hub.stats.slowConsumers.get("stalled"), 1);
  assert.deepEqual(r.hub.members("general").sort(), ["alice", "bob"]);
  assert.equal(r.hub.stats.disconnects.get("slow_consumer"), 1);
  assert.equal(b.socket.of("message").length, 20);
  assert.deepEqual(b.socket.of("leave").map((m) => m.user), ["slow"]);
  await r.done();
});

Deno.test("past a sender's share of the commit queue, say is refused with a retry hint; others are not, and it is not flooding", async () => {
  const r = rig();
  const a = r.connect("alice"), b = r.connect("bob");
  join(a.client), join(b.client);
  await settle();
  r.flush();
  const text = "q".repeat(4000);
  const each = 4000 + PENDING_LINE_BYTES;
  const fits = Math.floor(MAX_PENDING_BYTES_PER_SENDER / each);
  const offered = fits + FLOOD_REJECTIONS + 20; // more refusals than the flood window allows
  for (let i = 0; i < offered; i++) say(a.client, text, `a${i}`);
  say(b.client, "me too", "b0");
  const refused = a.socket.of("error");
  assert.equal(refused.length, offered - fits);
  assert.deepEqual(refused[0].cid, `a${fits}`, "the first past the share is the first refused");
  for (const e of refused) {
    assert.equal(e.code, "rate_limited");
    assert.ok(e.retryAfterMs >= MIN_RETRY_AFTER_MS && e.retryAfterMs <= MAX_RETRY_AFTER_MS);
  }
  assert.equal(a.client.closed, false, "a busy server's refusals are not flooding");
  assert.deepEqual(b.socket.of("error"), [], "another sender is not refused");
  assert.equal(r.hub.stats.busyRefusals, offered - fits);
  r.flush();
  const got = b.socket.of("message").map((m) => m.cid);
  assert.equal(got.length, fits + 1);
  assert.deepEqual(got.slice(0, fits), Array.from({ length: fits }, (_, i) => `a${i}`));
  // Once the batch is committed, the refused ones are taken again.
  say(a.client, text, `a${fits}`);
  r.flush();
  assert.equal(b.socket.of("message").at(-1)!.cid, `a${fits}`);
  await r.done();
});

Deno.test("a member behind is stalled only after STALL_TIMEOUT_MS without any drain, judged with no traffic", async () => {
  const r = rig();
  const a = r.connect("alice"), slow = r.connect("slow", { sendQueueBytes: 1000 });
  join(a.client), join(slow.client);
  await settle();
  r.flush();
  slow.socket.stalled = true;
  for (let i = 0; i < 10; i++) {
    say(a.client, "y".repeat(300));
    r.flush();
  } // then silence
  assert.ok(slow.socket.of("message").length < 10, "not everything fits the budget");
  r.tick(STALL_TIMEOUT_MS - DRAIN_POLL_MS);
  assert.equal(slow.socket.closeCode, undefined, "not before the stall timeout");
  r.tick(2 * DRAIN_POLL_MS);
  assert.equal(slow.socket.closeCode, 4008);
  assert.equal(slow.socket.closeReason, "slow consumer: stopped reading");
  await r.done();
});

Deno.test("a member that drains between looks is never evicted, though every look finds its socket busy", async () => {
  const r = rig();
  const a = r.connect("alice"), reader = r.connect("reader", { sendQueueBytes: 2000 });
  join(a.client), join(reader.client);
  await settle();
  r.flush();
  // A busy server: every look finds bytes unsent, but fewer than it left at the last one.
  reader.socket.stalled = true;
  for (let round = 0; round < 400; round++) {
    for (let i = 0; i < 5; i++) say(a.client, `r${round}m${i}`.padEnd(100, "."));
    r.flush();
    r.tick(DRAIN_POLL_MS);
    reader.socket.bufferedAmount = Math.floor(reader.socket.bufferedAmount / 2);
  }
  for (let i = 0; i < 100; i++) { // then it catches up
    reader.socket.bufferedAmount = 0;
    r.tick(DRAIN_POLL_MS);
  }
  assert.equal(reader.socket.closeCode, undefined);
  const texts = reader.socket.of("message").map((m) => m.text);
  assert.equal(texts.length, 2000, "every line, exactly once");
  assert.deepEqual(texts, a.socket.of("message").map((m) => m.text), "in order");
  await r.done();
});

Deno.test("a member that keeps draining but reads more slowly than the room talks is evicted once it falls a window behind", async () => {
  const r = rig(new MemoryStore(), { roomWindowBytes: 50_000 });
  const a = r.connect("alice"), lagger = r.connect("lagger", { sendQueueBytes: 2000 });
  join(a.client), join(lagger.client);
  await settle();
  r.flush();
  lagger.socket.stalled = true;
  let rounds = 0;
  while (lagger.socket.closeCode === undefined && rounds < 1000) {
    say(a.client, "z".repeat(1000)); // 1000 B per 10 ms in
    r.flush();
    r.tick(DRAIN_POLL_MS);
    lagger.socket.bufferedAmount = Math.max(0, lagger.socket.bufferedAmount - 500); // 500 B out
    rounds++;
  }
  assert.equal(lagger.socket.closeCode, 4008);
  assert.equal(lagger.socket.closeReason, "slow consumer: fell behind");
  // It falls behind by (line - 500) bytes a round: out of the 50 kB window after about this many.
  const line = new TextEncoder().encode(a.socket.frames.find((f) => f.includes('"zzz'))!).length;
  const expected = 50_000 / (line - 500);
  assert.ok(Math.abs(rounds - expected) <= 5, `evicted after ${rounds} rounds, not ~${expected}`);
  await r.done();
});

Deno.test("presence: others see join and leave; the joiner does not see its own join", async () => {
  const r = rig();
  const a = r.connect("alice"), b = r.connect("bob");
  join(a.client);
  await settle();
  join(b.client);
  await settle();
  r.flush();
  const joined = b.socket.of("joined")[0];
  assert.deepEqual(joined.members, ["alice", "bob"]);
  assert.deepEqual(a.socket.of("join").map((m) => m.user), ["bob"]);
  assert.equal(b.socket.of("join").length, 0);
  b.client.receive('{"type":"leave","room":"general"}');
  r.flush();
  assert.equal(b.socket.of("left").length, 1);
  assert.deepEqual(a.socket.of("leave").map((m) => m.user), ["bob"]);
  a.client.socketClosed("client");
  assert.equal(r.hub.roomCount, 0, "an empty room is dropped from memory");
  await r.done();
});

Deno.test("typing reaches the other members in the room's frame, not the typist", async () => {
  const r = rig();
  const a = r.connect("alice"), b = r.connect("bob");
  join(a.client), join(b.client);
  await settle();
  r.flush();
  say(a.client, "hello");
  a.client.receive('{"type":"typing","room":"general"}');
  r.flush();
  assert.equal(b.socket.of("typing").length, 1);
  assert.equal(a.socket.of("typing").length, 0);
  assert.equal(
    a.socket.of("message").length,
    1,
    "the typist still gets the message in its variant frame",
  );
  a.client.receive('{"type":"typing","room":"general"}');
  r.flush();
  assert.equal(b.socket.of("typing").length, 1, "a second typing within 2 s is dropped");
  r.clock.now += 2000;
  a.client.receive('{"type":"typing","room":"general"}');
  r.flush();
  assert.equal(b.socket.of("typing").length, 2);
  await r.done();
});

Deno.test("a name is its account's: a day after a disconnect a stranger gets 4009, the token holder signs back in", async () => {
  const r = rig();
  const a = r.connect("alice");
  const token = a.socket.of("welcome")[0].resume as string;
  assert.match(token, /^[A-Za-z0-9_-]{43}$/, "256 bits, base64url");
  a.client.socketClosed("client");
  r.clock.now += 24 * 60 * 60_000;
  r.hub.sweep();
  const stranger = r.connect("ALICE");
  assert.equal(stranger.socket.closeCode, 4009);
  const back = r.connect("alice", { resume: token });
  assert.equal(back.socket.closeCode, undefined);
  assert.notEqual(back.socket.of("welcome")[0].resume, token, "signing in rotates the token");
  await r.done();
});

Deno.test("an account's second connection is live beside the first: one join line, both hear the room, a leave line after the last", async () => {
  const r = rig();
  const bob = r.connect("bob");
  join(bob.client);
  const laptop = r.connect("alice");
  join(laptop.client);
  await settle();
  const token = laptop.socket.of("welcome")[0].resume as string;
  const phone = r.connect("alice", { resume: token });
  assert.equal(laptop.socket.closeCode, undefined, "the first connection stays");
  join(phone.client);
  await settle();
  r.flush();
  assert.deepEqual(bob.socket.of("join").map((m) => m.user), ["alice"], "one join line");
  assert.deepEqual(phone.socket.of("joined")[0].members, ["alice", "bob"]);
  say(bob.client, "hi both");
  r.flush();
  for (const device of [laptop, phone]) {
    assert.deepEqual(device.socket.of("message").map((m) => m.text), ["hi both"]);
  }
  say(phone.client, "from the phone");
  r.flush();
  assert.deepEqual(laptop.socket.of("message").map((m) => m.text), ["hi both", "from the phone"]);
  laptop.client.socketClosed("client");
  r.flush();
  assert.deepEqual(bob.socket.of("leave"), [], "alice is still here on her phone");
  assert.deepEqual(r.hub.members("general").sort(), ["alice", "bob"]);
  phone.client.socketClosed("client");
  r.flush();
  assert.deepEqual(bob.socket.of("leave").map((m) => m.user), ["alice"]);
  await r.done();
});

Deno.test("a hello with a tab's own connection id replaces its stale socket with 4010; other tabs stay", async () => {
  const r = rig();
  const a = r.connect("alice", { connection: "tab-a" });
  join(a.client);
  await settle();
  const token = a.socket.of("welcome")[0].resume as string;
  const wrong = r.connect("alice", { resume: "x".repeat(43), connection: "tab-a" });
  assert.equal(wrong.socket.closeCode, 4009);
  const b = r.connect("alice", { resume: token, connection: "tab-b" });
  const next = b.socket.of("welcome")[0].resume as string;
  const again = r.connect("alice", { resume: next, connection: "tab-a" });
  assert.equal(a.socket.closeCode, 4010);
  assert.equal(b.socket.closeCode, undefined);
  assert.equal(again.socket.of("welcome").length, 1);
  assert.deepEqual(r.hub.members("general"), []);
  await r.done();
});

Deno.test("a DM reaches every connection of the recipient and the sender's other connections", async () => {
  const r = rig();
  const a1 = r.connect("alice");
  const a2 = r.connect("alice", { resume: a1.socket.of("welcome")[0].resume as string });
  const b1 = r.connect("bob");
  const b2 = r.connect("bob", { resume: b1.socket.of("welcome")[0].resume as string });
  a1.client.receive(JSON.stringify({ type: "dm", to: "bob", text: "psst", cid: "c1" }));
  for (const s of [a1, a2, b1, b2]) {
    assert.deepEqual(s.socket.of("dm").map((m) => [m.from, m.to, m.text]), [[
      "alice",
      "bob",
      "psst",
    ]]);
  }
  await r.done();
});

Deno.test("leaving a room from one connection leaves it on every connection of the account", async () => {
  const r = rig();
  const bob = r.connect("bob");
  join(bob.client);
  const a1 = r.connect("alice");
  const a2 = r.connect("alice", { resume: a1.socket.of("welcome")[0].resume as string });
  join(a1.client);
  join(a2.client);
  await settle();
  a1.client.receive(JSON.stringify({ type: "leave", room: "general" }));
  r.flush();
  assert.equal(a1.socket.of("left").length, 1);
  assert.equal(a2.socket.of("left").length, 1, "the other tab is told too");
  assert.deepEqual(bob.socket.of("leave").map((m) => m.user), ["alice"]);
  assert.deepEqual(r.hub.members("general"), ["bob"]);
  await r.done();
});

Deno.test("the welcome lists the rooms the account joined, on any connection, and not those it left", async () => {
  const r = rig();
  const a = r.connect("alice");
  join(a.client, "general");
  join(a.client, "random");
  join(a.client, "gone");
  await settle();
  a.client.receive(JSON.stringify({ type: "leave", room: "gone" }));
  const token = a.socket.of("welcome")[0].resume as string;
  assert.deepEqual(a.socket.of("welcome")[0].rooms, []);
  const phone = r.connect("alice", { resume: token });
  assert.deepEqual(phone.socket.of("welcome")[0].rooms, ["general", "random"]);
  await r.done();
});

Deno.test("a resent cid is not stored again: the sender alone gets the original back", async () => {
  const r = rig();
  const a = r.connect("alice"), b = r.connect("bob");
  join(a.client), join(b.client);
  await settle();
  r.flush();
  say(a.client, "once", "c1");
  say(a.client, "once", "c1"); // in the same batch
  r.flush();
  say(a.client, "once", "c1"); // after the commit
  r.flush();
  assert.deepEqual(a.socket.of("message").map((m) => m.seq), [1, 1]);
  assert.deepEqual(b.socket.of("message").map((m) => m.seq), [1]);
  r.clock.now += RESEND_WINDOW_MS + 1;
  say(a.client, "again", "c1");
  r.flush();
  assert.deepEqual(
    b.socket.of("message").map((m) => m.seq),
    [1, 2],
    "after 10 minutes the cid is fresh",
  );
  await r.done();
});

Deno.test("when the store fails, senders get unavailable and nothing is delivered", async () => {
  const store = new MemoryStore();
  let failing = true;
  const flaky = wrapStore(store, {
    append(batch: readonly NewMessage[]) {
      if (failing) throw new Error("disk full");
      return store.append(batch);
    },
  });
  const r = rig(flaky);
  const a = r.connect("alice"), b = r.connect("bob");
  join(a.client), join(b.client);
  await settle();
  r.flush();
  say(a.client, "lost?", "c1");
  r.flush();
  assert.deepEqual(a.socket.of("error").map((e) => [e.code, e.cid]), [["unavailable", "c1"]]);
  assert.equal(b.socket.of("message").length, 0);
  failing = false;
  say(a.client, "lost?", "c1");
  r.flush();
  assert.deepEqual(
    b.socket.of("message").map((m) => m.seq),
    [1],
    "the retry with the same cid is accepted",
  );
  await r.done();
});

Deno.test("with an async store, messages said during a commit form the next batch, in order", async () => {
  const store = new MemoryStore();
  const batches: number[] = [];
  const slow = wrapStore(store, {
    async append(batch: readonly NewMessage[]): Promise<ChatMessage[]> {
      batches.push(batch.length);
      await new Promise((res) => setTimeout(res, 5));
      return store.append(batch);
    },
  });
  const r = rig(slow);
  const a = r.connect("alice"), b = r.connect("bob");
  join(a.client), join(b.client);
  await settle();
  say(a.client, "m0");
  r.flush(); // commit 1 in flight
  for (let i = 1; i < 5; i++) say(a.client, `m${i}`);
  r.flush(); // waits for commit 1
  while (b.socket.of("message").length < 5) {
    await new Promise((res) => setTimeout(res, 2));
    r.flush();
  }
  assert.deepEqual(batches, [1, 4]);
  assert.deepEqual(b.socket.of("message").map((m) => m.text), ["m0", "m1", "m2", "m3", "m4"]);
  await r.done();
});

Deno.test("join without since returns the last 50; with since exactly the messages after it", async () => {
  const r = rig();
  const a = r.connect("alice");
  join(a.client);
  await settle();
  for (let i = 1; i <= 80; i++) say(a.client, `m${i}`);
  r.flush();
  const b = r.connect("bob");
  join(b.client);
  await settle();
  const plain = b.socket.of("joined")[0];
  assert.deepEqual(
    plain.history.map((m: ChatMessage) => m.seq),
    Array.from({ length: 50 }, (_, i) => i + 31),
  );
  assert.equal(plain.seq, 80);
  const c = r.connect("carol");
  join(c.client, "general", 75);
  await settle();
  assert.deepEqual(c.socket.of("joined")[0].history.map((m: ChatMessage) => m.seq), [
    76,
    77,
    78,
    79,
    80,
  ]);
  await r.done();
});

Deno.test("a client may be in at most maxRoomsPerClient rooms", async () => {
  const r = rig();
  const a = r.connect("alice");
  for (const room of ["a", "b", "c", "d"]) join(a.client, room);
  await settle();
  assert.equal(a.socket.of("joined").length, 3);
  assert.deepEqual(a.socket.of("error").map((e) => e.code), ["too_many_rooms"]);
  await r.done();
});

Deno.test("shutdown commits what was accepted, then closes every socket with 1001", async () => {
  const r = rig();
  const a = r.connect("alice");
  join(a.client);
  await settle();
  say(a.client, "last words", "c1");
  await r.hub.shutdown();
  assert.deepEqual(a.socket.of("message").map((m) => m.text), ["last words"]);
  assert.equal(a.socket.closeCode, 1001);
  assert.equal(a.socket.closeReason, "server shutting down");
  await r.done();
});

/** A cluster of one fake peer: records what the hub publishes and lets a test play the peer. */
class FakeCluster implements Cluster {
  healthy = true;
  /** The hub's side of the cluster, as the hub hands it over: a test plays the peer through it. */
  listener: ClusterListener | null = null;
  listen(listener: ClusterListener) {
    this.listener = listener;
  }
  published: { room: string; line: string; seq?: number }[] = [];
  /** Presence calls in order: exit, publish (joins and leaves), release. */
  log: string[] = [];
  direct: { key: string; line: string }[] = [];
  names = new Map<string, string>([["zed", "Zed"]]); // held by the other instance
  remoteMembers = new Map<string, string[]>([["general", ["Zed"]]]);
  claimName(key: string, name: string) {
    if (this.names.has(key) && this.names.get(key) !== name) return Promise.resolve(false);
    this.names.set(key, name);
    return Promise.resolve(true);
  }
  releaseName(key: string) {
    this.names.delete(key);
    this.log.push(`release ${key}`);
    return Promise.resolve();
  }
  ownerOf(key: string) {
    return Promise.resolve(this.names.get(key) ?? null);
  }
  enterRoom() {
    return Promise.resolve();
  }
  /** When set, exitRoom waits for it, like a slow Redis. */
  exitGate: Promise<void> | null = null;
  exitRoom(room: string, name: string) {
    this.log.push(`exit ${room} ${name}`);
    return this.exitGate ?? Promise.resolve();
  }
  members(room: string) {
    return Promise.resolve([...(this.remoteMembers.get(room) ?? [])]);
  }
  rooms() {
    return Promise.resolve([{ room: "general", members: 2 }]);
  }
  publishRoom(room: string, line: string, seq?: number) {
    this.published.push(seq === undefined ? { room, line } : { room, line, seq });
  }
  publishPresence(room: string, line: string) {
    this.published.push({ room, line });
    const { type, user } = JSON.parse(line);
    this.log.push(`publish ${room} ${type} ${user}`);
  }
  /** False: this instance lost the sender's name (a test plays a frozen instance). */
  holdsSender = true;
  publishDirect(key: string, line: string, _from: string) {
    if (this.holdsSender) this.direct.push({ key, line });
    return Promise.resolve(this.holdsSender);
  }
  close() {
    return Promise.resolve();
  }
}

/** A hub in a fake cluster; `wrap` may put a slower store in front of the shared one. */
function clusterRig(wrap: (store: MemoryStore) => Store = (store) => store) {
  const store = new MemoryStore();
  const cluster = new FakeCluster();
  const queue: (() => void)[] = [];
  const hub = new Hub({
    store: wrap(store),
    maxRoomsPerClient: 3,
    welcomeLimits: {},
    version: "test",
    schedule: (fn) => queue.push(fn),
    cluster,
  });
  const flush = () => {
    while (queue.length > 0) queue.shift()!();
  };
  const connect = async (name: string) => {
    const socket = new FakeSocket();
    const client = new Client(socket, hub, fakeClientOptions());
    hub.add(client);
    client.receive(JSON.stringify({ type: "hello", name }));
    await settle();
    return { client, socket };
  };
  /** What another instance does: commit to the shared store, then publish. */
  const peerSays = (text: string, publish = true) => {
    const [m] = store.append([{ room: "general", from: "Zed", text, ts: 1 }]);
    if (publish) cluster.listener!.remoteRoomLine("general", messageLine(m), m.seq);
    return m;
  };
  return { hub, store, cluster, flush, connect, peerSays };
}

Deno.test("cluster: a name held on another instance is taken; members are the union", async () => {
  const r = clusterRig();
  // Record members as Redis does: the hub must enter each local member before it asks, so the
  // cluster's list holds this instance's members beside the other instance's Zed.
  const entered = new Set<string>();
  const cluster: Cluster = r.cluster;
  cluster.enterRoom = (_room, name) => {
    entered.add(name);
    return Promise.resolve();
  };
  cluster.members = (room) =>
    Promise.resolve([...(r.cluster.remoteMembers.get(room) ?? []), ...entered]);
  const zed = await r.connect("ZED");
  assert.equal(zed.socket.closeCode, 4009);
  const b = await r.connect("bob");
  join(b.client);
  await settle();
  const a = await r.connect("alice");
  join(a.client);
  await settle();
  // Local only would be [alice, bob]; the cluster's answer without the entry, [Zed, bob].
  assert.deepEqual(
    [...a.socket.of("joined")[0].members].sort(),
    ["Zed", "alice", "bob"],
    "the joiner, the local member and the other instance's member",
  );
  assert.equal(r.cluster.names.get("alice"), "alice");
  a.client.socketClosed("client");
  assert.equal(r.cluster.names.has("alice"), false, "the cluster claim ends with the disconnect");
  await r.hub.shutdown();
});

Deno.test("cluster: a name is released only after the leave lines of its last commands went out", async () => {
  const r = clusterRig();
  const a = await r.connect("alice");
  join(a.client);
  await settle();
  let exited!: () => void;
  r.cluster.exitGate = new Promise((resolve) => exited = resolve);
  a.client.receive(JSON.stringify({ type: "leave", room: "general" }));
  a.client.socketClosed("client"); // at once, while Redis is slow to remove the membership
  await settle();
  assert.deepEqual(r.cluster.log.slice(-1), ["exit general alice"], "nothing else yet");
  exited();
  await settle();
  assert.deepEqual(r.cluster.log.slice(-3), [
    "exit general alice",
    "publish general leave alice",
    "release alice",
  ]);
  await r.hub.shutdown();
});

Deno.test("cluster: committed messages are published with their seq; remote ones arrive in seq order", async () => {
  const r = clusterRig();
  const a = await r.connect("alice");
  join(a.client);
  await settle();
  say(a.client, "mine");
  r.flush();
  assert.deepEqual(r.cluster.published.filter((p) => p.seq !== undefined).map((p) => p.seq), [1]);
  r.peerSays("theirs");
  r.flush();
  assert.deepEqual(a.socket.of("message").map((m) => [m.seq, m.text]), [[1, "mine"], [
    2,
    "theirs",
  ]]);
  // A late repeat of a line already delivered is dropped.
  r.cluster.listener!.remoteRoomLine(
    "general",
    messageLine({ room: "general", seq: 2, from: "Zed", text: "theirs", ts: 1 }),
    2,
  );
  r.flush();
  assert.equal(a.socket.of("message").length, 2);
  await r.hub.shutdown();
});

Deno.test("cluster: a line past a gap makes the hub fill the gap from the store, in order, once", async () => {
  const r = clusterRig();
  const a = await r.connect("alice");
  join(a.client);
  await settle();
  r.peerSays("lost on the bus", false); // seq 1 never published
  r.peerSays("arrives"); // seq 2 arrives first
  await settle();
  r.flush();
  assert.deepEqual(a.socket.of("message").map((m) => m.seq), [1, 2]);
  r.cluster.listener!.remoteRoomLine(
    "general",
    messageLine({ room: "general", seq: 1, from: "Zed", text: "x", ts: 1 }),
    1,
  );
  r.flush();
  assert.deepEqual(
    a.socket.of("message").map((m) => m.seq),
    [1, 2],
    "the late line is not delivered twice",
  );
  await r.hub.shutdown();
});

Deno.test("cluster: a DM to a user on another instance goes over the bus; one to this instance arrives", async () => {
  const r = clusterRig();
  const a = await r.connect("alice");
  a.client.receive(JSON.stringify({ type: "dm", to: "zed", text: "hi" }));
  await settle();
  assert.equal(r.cluster.direct.length, 1);
  assert.equal(r.cluster.direct[0].key, "zed");
  assert.deepEqual(JSON.parse(r.cluster.direct[0].line), {
    type: "dm",
    from: "alice",
    to: "Zed",
    text: "hi",
    ts: JSON.parse(r.cluster.direct[0].line).ts,
  });
  assert.equal(a.socket.of("dm").length, 1, "the sender gets its copy");
  a.client.receive(JSON.stringify({ type: "dm", to: "nobody", text: "hi" }));
  await settle();
  assert.deepEqual(a.socket.of("error").map((e) => e.code), ["unknown_user"]);
  r.cluster.listener!.remoteDirect(
    "alice",
    '{"type":"dm","from":"Zed","to":"alice","text":"yo","ts":1}',
  );
  assert.equal(a.socket.of("dm").length, 2);
  await r.hub.shutdown();
});

Deno.test("cluster: a DM from a name this instance lost is not handed on, and its sender is closed 4009", async () => {
  const r = clusterRig();
  const a = await r.connect("alice");
  r.cluster.holdsSender = false; // another instance gave "alice" away while this one was frozen
  a.client.receive(JSON.stringify({ type: "dm", to: "zed", text: "stale" }));
  await settle();
  assert.deepEqual(r.cluster.direct, []);
  assert.equal(a.socket.of("dm").length, 0, "no acknowledgement for what was not sent");
  assert.equal(a.socket.closeCode, 4009);
  await r.hub.shutdown();
});

Deno.test("cluster: a failed cluster call is logged as cluster_failed, a failed store read as store_failed", async () => {
  const events: { event: string; error: string }[] = [];
  const cluster = new FakeCluster();
  cluster.rooms = () => Promise.reject(new Error("redis gone"));
  let storeDown = false;
  const store = wrapStore(new MemoryStore(), {
    bounds: (room) =>
      storeDown ? Promise.reject(new Error("disk gone")) : new MemoryStore().bounds(room),
  });
  const hub = new Hub({
    store,
    maxRoomsPerClient: 3,
    welcomeLimits: {},
    version: "test",
    cluster,
    observers: {
      event: (_level, event, fields) => events.push({ event, error: `${fields.error}` }),
    },
  });
  const socket = new FakeSocket();
  const client = new Client(socket, hub, fakeClientOptions());
  hub.add(client);
  client.receive(JSON.stringify({ type: "hello", name: "alice" }));
  await settle();
  client.receive(JSON.stringify({ type: "rooms" }));
  await settle();
  storeDown = true;
  join(client, "other");
  await settle();
  assert.deepEqual(socket.of("error").map((e) => e.code), ["unavailable", "unavailable"]);
  const failures = events.filter((e) => e.event.endsWith("_failed"));
  assert.deepEqual(failures, [
    { event: "cluster_failed", error: "Error: redis gone" },
    { event: "store_failed", error: "Error: disk gone" },
  ]);
  await hub.shutdown();
});

Deno.test("commands sent right after a join wait for it, so a reconnect may resend its outbox at once", async () => {
  const store = new MemoryStore();
  const slowReads = wrapStore(store, {
    async read(room, range) {
      await new Promise((res) => setTimeout(res, 5));
      return store.read(room, range);
    },
  });
  const r = rig(slowReads);
  const a = r.connect("alice");
  join(a.client, "general", 0); // a read from the store is in flight
  say(a.client, "resent", "c1");
  while (a.socket.of("message").length === 0) {
    await new Promise((res) => setTimeout(res, 2));
    r.flush();
  }
  assert.deepEqual(a.socket.of("error"), []);
  const types = a.socket.messages.map((m) => m.type);
  assert.ok(types.indexOf("joined") < types.indexOf("message"), `order: ${types}`);
  await r.done();
});

Deno.test("a member over its budget only for a moment is kept; a reply to one far over it evicts at once", async () => {
  const r = rig();
  const a = r.connect("alice"), b = r.connect("bob", { sendQueueBytes: 2000 });
  join(a.client), join(b.client);
  await settle();
  r.flush();
  b.socket.bufferedAmount = 3000; // writes done by the kernel but not yet reported by the runtime
  say(a.client, "burst");
  r.flush();
  assert.deepEqual(b.socket.of("message").map((m) => m.text), [], "nothing handed past the budget");
  b.socket.bufferedAmount = 0;
  say(a.client, "next");
  r.flush();
  assert.equal(b.socket.closeCode, undefined);
  assert.deepEqual(b.socket.of("message").map((m) => m.text), ["burst", "next"]);
  b.socket.bufferedAmount = 2000 * HARD_LIMIT_FACTOR + 1;
  b.client.receive(JSON.stringify({ type: "rooms" })); // a direct reply
  assert.equal(b.socket.closeCode, 4008, "more than HARD_LIMIT_FACTOR budgets: evicted at once");
  assert.equal(b.socket.closeReason, "slow consumer: send queue full");
  await r.done();
});

Deno.test("cluster: a sender whose own message a resync delivered first gets it once", async () => {
  let releaseAppend: () => void = () => {};
  // The append is stored at once but answers late, as over the network.
  const r = clusterRig((store) =>
    wrapStore(store, {
      async append(batch) {
        const stored = store.append(batch);
        await new Promise<void>((res) => releaseAppend = res);
        return stored;
      },
    })
  );
  const a = await r.connect("alice");
  join(a.client);
  await settle();
  say(a.client, "mine", "c1");
  r.flush(); // alice's append (seq 1) is stored, its answer is in flight
  r.peerSays("theirs"); // seq 2 overtakes it: a gap, so a resync from the store
  await settle();
  r.flush();
  releaseAppend();
  await settle();
  r.flush();
  assert.deepEqual(a.socket.of("message").map((m) => [m.seq, m.text]), [[1, "mine"], [
    2,
    "theirs",
  ]]);
  await r.hub.shutdown();
  a.client.close(1000, "test over", "client");
});

Deno.test("a say the store refuses for a lost name closes its sender 4009; one for a name being restored is answered unavailable", async () => {
  const inner = new MemoryStore();
  let refuse: "elsewhere" | "unheld" | null = null;
  const r = rig(wrapStore(inner, {
    append: (batch) =>
      refuse === null ? inner.append(batch) : batch.map(() => ({ refused: refuse! })),
  }));
  const a = r.connect("alice"), b = r.connect("bob");
  join(a.client);
  join(b.client);
  await settle();
  refuse = "unheld";
  say(a.client, "while restoring", "c1");
  r.flush();
  assert.deepEqual(a.socket.of("error").map((e) => [e.code, e.cid]), [["unavailable", "c1"]]);
  refuse = null;
  say(a.client, "while restoring", "c1"); // the resend is taken: the guard did not keep the cid
  r.flush();
  assert.deepEqual(b.socket.of("message").map((m) => m.text), ["while restoring"]);
  refuse = "elsewhere";
  say(b.client, "from a name taken elsewhere");
  r.flush();
  assert.equal(b.socket.closeCode, 4009);
  assert.deepEqual(a.socket.of("leave"), [], "the user is present elsewhere: no leave");
  assert.equal(a.socket.of("message").length, 1);
  await r.done();
});
