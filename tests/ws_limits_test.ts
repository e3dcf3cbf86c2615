/**
 * The limits of docs/protocol.md over real sockets: text and frame sizes, rate limits and
 * flooding, binary frames, slow consumers, fan-out batching under a burst, and the 1001 close at
 * shutdown. The server runs in this process (see server_fixture.ts).
 */
import assert from "node:assert/strict";
import { utf8Length } from "../client.ts";
import { frameBytesForBudget } from "../hub/room.ts";
import { MemoryStore, type NewMessage } from "../store/store.ts";
import type { Msg } from "./helpers.ts";
import { closedWithin } from "./helpers.ts";
import { join, received, SlowStore, startServer } from "./server_fixture.ts";

const EMOJI = "😀"; // one code point, two UTF-16 units, four UTF-8 bytes

/** A say frame padded with JSON whitespace to exactly `bytes` UTF-8 bytes. */
function sayFrameOfBytes(text: string, bytes: number): string {
  const base = JSON.stringify({ type: "say", room: "general", text, cid: "big" });
  const pad = bytes - utf8Length(base);
  assert.ok(pad >= 0, `the text alone is over ${bytes} bytes`);
  return base.slice(0, -1) + " ".repeat(pad) + "}";
}

// ---- text and frame size ----

Deno.test("a text of 4001 characters is refused with too_long and its cid; 4000 is accepted", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  const long = await alice.request(
    { type: "say", room: "general", text: "x".repeat(4001), cid: "t1" },
    (m) => m.type === "error" || m.type === "message",
  );
  assert.deepEqual([long.type, long.code, long.cid], ["error", "too_long", "t1"]);
  const ok = await alice.request(
    { type: "say", room: "general", text: "x".repeat(4000), cid: "t2" },
    (m) => m.type === "error" || m.type === "message",
  );
  assert.deepEqual([ok.type, ok.cid, ok.text.length], ["message", "t2", 4000]);
});

Deno.test("text length counts code points: 4000 emoji (16000 bytes, in one 16 KiB frame) are accepted", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  const text = EMOJI.repeat(4000);
  const frame = JSON.stringify({ type: "say", room: "general", text, cid: "e1" });
  assert.ok(utf8Length(frame) <= 16384, "the frame itself is within the frame limit");
  const reply = await alice.request(
    frame as unknown as Msg,
    (m) => m.type === "error" || m.type === "message",
  );
  assert.deepEqual([reply.type, reply.cid], ["message", "e1"]);
  assert.equal(reply.text, text);
});

Deno.test("4001 emoji are refused with too_long, not closed as an oversized frame", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  const frame = JSON.stringify({
    type: "say",
    room: "general",
    text: EMOJI.repeat(4001),
    cid: "e2",
  });
  assert.ok(utf8Length(frame) <= 16384);
  const reply = await alice.request(frame as unknown as Msg, (m) => m.type === "error");
  assert.deepEqual([reply.code, reply.cid], ["too_long", "e2"]);
  assert.equal(alice.socket.readyState, WebSocket.OPEN);
});

Deno.test("a dm over 4000 characters is refused with too_long and its cid", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await server.connect("bob");
  const reply = await alice.request(
    { type: "dm", to: "bob", text: "y".repeat(4001), cid: "d1" },
    (m) => m.type === "error" || m.type === "dm",
  );
  assert.deepEqual([reply.code, reply.cid], ["too_long", "d1"]);
});

Deno.test("a frame of exactly 16384 bytes is accepted", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  const frame = sayFrameOfBytes(EMOJI.repeat(4000), 16384);
  const reply = await alice.request(
    frame as unknown as Msg,
    (m) => m.type === "error" || m.type === "message",
  );
  assert.deepEqual([reply.type, reply.cid], ["message", "big"]);
});

Deno.test("a frame of 16385 bytes closes the connection with 1009", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  alice.send(sayFrameOfBytes(EMOJI.repeat(4000), 16385));
  const closed = await closedWithin(alice);
  assert.equal(closed.code, 1009);
  assert.deepEqual(received(alice, "message"), []);
});

Deno.test("a 17 KiB frame closes the connection with 1009, before and after the hello", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  alice.send({ type: "say", room: "general", text: "z".repeat(17 * 1024) });
  const closed = await closedWithin(alice);
  assert.equal(closed.code, 1009);
  assert.match(closed.reason, /16384/);
  const early = await server.open();
  early.send({ type: "hello", name: "n".repeat(17 * 1024) });
  assert.equal((await closedWithin(early)).code, 1009);
});

Deno.test("a binary frame closes the connection with 1003", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  alice.socket.send(new TextEncoder().encode(JSON.stringify({ type: "rooms" })));
  const closed = await closedWithin(alice);
  assert.equal(closed.code, 1003);
  const early = await server.open();
  early.socket.send(new Uint8Array([1, 2, 3]));
  assert.equal((await closedWithin(early)).code, 1003);
});

// ---- rate limits ----

Deno.test("a burst of 20 says is accepted and the 21st is refused with rate_limited and its cid", async () => {
  const clock = { now: 1_700_000_000_000 }; // the clients' clock: frozen, so no token refills
  await using server = await startServer({ clientNow: () => clock.now });
  const alice = await server.connect("alice");
  await join(alice, "general");
  for (let i = 1; i <= 21; i++) {
    alice.send({ type: "say", room: "general", text: "hi", cid: `r${i}` });
  }
  const refused = await alice.waitFor((m) => m.type === "error");
  assert.deepEqual([refused.code, refused.cid], ["rate_limited", "r21"]);
  await alice.waitFor((m) => m.type === "message" && m.cid === "r20");
  assert.equal(received(alice, "message").length, 20);
  // A dm shares the bucket.
  await server.connect("bob");
  const dm = await alice.request(
    { type: "dm", to: "bob", text: "hi", cid: "d1" },
    (m) => m.type === "error" || m.type === "dm",
  );
  assert.deepEqual([dm.code, dm.cid], ["rate_limited", "d1"]);
  // 10 per second: 100 ms later one more is accepted, and only one.
  clock.now += 100;
  alice.send({ type: "say", room: "general", text: "later", cid: "r22" });
  alice.send({ type: "say", room: "general", text: "later", cid: "r23" });
  const next = await alice.waitFor((m) => m.cid === "r23");
  assert.equal(next.code, "rate_limited");
  const accepted = await alice.waitFor((m) => m.cid === "r22");
  assert.equal(accepted.type, "message");
});

Deno.test("other commands share a bucket five times larger: the 101st rooms is refused with its cid", async () => {
  const clock = { now: 1_700_000_000_000 };
  await using server = await startServer({ clientNow: () => clock.now });
  const alice = await server.connect("alice");
  for (let i = 1; i <= 101; i++) alice.send({ type: "rooms", cid: `q${i}` });
  const refused = await alice.waitFor((m) => m.type === "error");
  // The cid comes back on every refusal, so a client knows which join or history request failed.
  assert.deepEqual([refused.code, refused.cid], ["rate_limited", "q101"]);
  assert.equal(received(alice, "rooms").length, 100);
  // Messages have their own bucket, untouched.
  await alice.waitFor((m) => m.type === "rooms");
  const dm = await alice.request(
    { type: "dm", to: "alice", text: "note to self" },
    (m) => m.type === "dm" || m.type === "error",
  );
  assert.equal(dm.type, "dm");
});

Deno.test("100 rate_limited refusals within a minute keep the connection; the 101st closes it with 4029", async () => {
  const clock = { now: 1_700_000_000_000 };
  await using server = await startServer({ clientNow: () => clock.now });
  const alice = await server.connect("alice");
  await join(alice, "general");
  for (let i = 1; i <= 120; i++) {
    alice.send({ type: "say", room: "general", text: "x", cid: `f${i}` });
  }
  await alice.waitFor((m) => m.cid === "f120");
  assert.equal(alice.socket.readyState, WebSocket.OPEN);
  assert.equal(received(alice, "error").length, 100);
  alice.send({ type: "say", room: "general", text: "x", cid: "f121" });
  const closed = await closedWithin(alice);
  assert.deepEqual([closed.code, closed.reason], [4029, "kept flooding"]);
  assert.equal(received(alice, "error").length, 101, "the last refusal is sent before the close");
  assert.equal(server.hub.stats.disconnects.get("rate_limited"), 1);
});

Deno.test("with --rate-limit off nothing is rate limited", async () => {
  await using server = await startServer({ rateLimit: null });
  const alice = await server.connect("alice");
  assert.equal(alice.messages[0].limits.rate, null);
  await join(alice, "general");
  for (let i = 1; i <= 200; i++) {
    alice.send({ type: "say", room: "general", text: "x", cid: `n${i}` });
  }
  await alice.waitFor((m) => m.cid === "n200");
  assert.deepEqual(received(alice, "error"), []);
});

Deno.test("a say the store cannot take is refused with unavailable and its cid, and reaches no one", async () => {
  const store = new MemoryStore();
  await using server = await startServer({ store });
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  await join(bob, "general");
  store.append = () => {
    throw new Error("disk full");
  };
  const reply = await alice.request(
    { type: "say", room: "general", text: "lost?", cid: "u1" },
    (m) => m.type === "error" || m.type === "message",
  );
  assert.deepEqual([reply.code, reply.cid], ["unavailable", "u1"]);
  assert.equal(alice.socket.readyState, WebSocket.OPEN);
  assert.deepEqual(received(bob, "message"), []);
});

// ---- idle peers ----

Deno.test("a peer that answers no ping within the idle timeout is dropped and counted as idle", async () => {
  await using server = await startServer({ idleTimeoutSeconds: 1 });
  const alice = await server.connect("alice"); // the built-in client answers pings
  await join(alice, "general");
  const silent = await server.raw(); // never reads, so never answers a ping
  await silent.sendText(JSON.stringify({ type: "hello", name: "silent" }));
  await silent.sendText(JSON.stringify({ type: "join", room: "general" }));
  await alice.waitFor((m) => m.type === "join" && m.user === "silent");
  await alice.waitFor((m) => m.type === "leave" && m.user === "silent", 5000);
  assert.equal(alice.socket.readyState, WebSocket.OPEN, "a peer that answers pings stays");
  assert.deepEqual([...server.hub.stats.disconnects], [["idle", 1]]);
});

// ---- fan-out ----

/**
 * Most frames a burst of 500 short says, written in one go, may reach another member in. The hub
 * queues what arrives in one turn of the event loop and flushes it on the next, one frame per room
 * and member up to the frame cap (a sixteenth of the send budget, 64 KiB by default), and the
 * burst's 500 lines (about 55 KB) fit in one frame. So the count is how many turns the server
 * takes to read one 33 KB write: one here (also with every core busy); 4 leaves room for the
 * kernel handing the write over in a few reads. A hub that sent each message, or each handful, on
 * its own would be far over it.
 */
const MAX_BURST_FRAMES = 4;

Deno.test("a burst of 500 messages written at once reaches another member in at most MAX_BURST_FRAMES frames, in order, without loss or gaps", async () => {
  await using server = await startServer({ rateLimit: null });
  const bob = await server.connect("bob");
  await join(bob, "general");
  // A raw socket, so the whole burst is one write: "said at once" on the wire, not 500 sends.
  const alice = await server.raw();
  await alice.sendText(JSON.stringify({ type: "hello", name: "alice" }));
  await alice.sendText(JSON.stringify({ type: "join", room: "general" }));
  await bob.waitFor((m) => m.type === "join" && m.user === "alice");
  const framesBefore = bob.frames;
  const seen = bob.messages.length;
  const burst = Array.from({ length: 500 }, (_, i) => ({
    type: "say",
    room: "general",
    text: `burst ${i}`,
    cid: `b${i}`,
  }));
  await alice.sendTexts(burst.map((m) => JSON.stringify(m)));
  await bob.waitFor((m) => m.type === "message" && m.cid === "b499", 10_000);
  const got = bob.messages.slice(seen).filter((m) => m.type === "message");
  assert.deepEqual(got.map((m) => m.text), burst.map((m) => m.text), "every message, in order");
  assert.deepEqual(got.map((m) => m.seq), Array.from({ length: 500 }, (_, i) => i + 1));
  const lineBytes = got.reduce((n, m) => n + utf8Length(JSON.stringify(m)) + 1, 0);
  assert.ok(
    lineBytes < frameBytesForBudget(server.config.sendQueueBytes),
    `the burst's ${lineBytes} bytes fit in one frame`,
  );
  const frames = bob.frames - framesBefore;
  assert.ok(frames <= MAX_BURST_FRAMES, `500 messages came in ${frames} frames`);
});

Deno.test("a stalled member is evicted as a slow consumer (4008) while the others receive every message in order", async () => {
  await using server = await startServer({ rateLimit: null, sendQueueBytes: 256 * 1024 });
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "busy");
  await join(bob, "busy");
  // A raw socket that says hello, joins, and then never reads.
  const stalled = await server.raw();
  await stalled.sendText(JSON.stringify({ type: "hello", name: "stally" }));
  await stalled.sendText(JSON.stringify({ type: "join", room: "busy" }));
  await alice.waitFor((m) => m.type === "join" && m.user === "stally");

  const text = "x".repeat(4000);
  const isLeave = (m: Msg) => m.type === "leave" && m.user === "stally";
  let sent = 0;
  // Send in rounds until the server gives up on the stalled member (kernel buffers absorb the
  // first few MB, so how much it takes depends on the machine). A round is 40 messages, so one
  // round's frame (about 165 KB) stays under the 256 KiB budget of the members that keep up.
  while (!bob.messages.some(isLeave)) {
    assert.ok(sent < 10_000, "the stalled member was never evicted");
    for (let i = 0; i < 40; i++) {
      sent++;
      alice.send({ type: "say", room: "busy", text, cid: `m${sent}` });
    }
    await bob.waitFor((m) => m.type === "message" && m.cid === `m${sent}`, 10_000);
  }
  await alice.waitFor(isLeave);
  assert.equal(server.hub.stats.disconnects.get("slow_consumer"), 1);
  assert.deepEqual(server.hub.members("busy").sort(), ["alice", "bob"]);
  for (const c of [alice, bob]) {
    const got = received(c, "message", "busy");
    assert.equal(got.length, sent, "no message lost");
    assert.ok(got.every((m, i) => m.seq === i + 1), "in order, no gaps");
  }

  // Reading now, the stalled socket finds what was buffered and then the 4008 close.
  const drained = await stalled.drain();
  assert.equal(drained.messages[0].type, "welcome");
  assert.equal(drained.closeCode, 4008);
  // Which rule finds it first depends on how much the kernel buffers absorb before it stalls.
  assert.ok(
    ["slow consumer: fell behind", "slow consumer: stopped reading"].includes(drained.closeReason),
    `close reason: ${drained.closeReason}`,
  );
  const tail = drained.messages.filter((m) => m.type === "message");
  assert.ok(tail.every((m, i) => m.seq === i + 1), "what it did get was in order");
  assert.ok(tail.length < sent);
});

Deno.test("a burst whose coalesced frame is larger than the send budget does not evict members that keep up", async () => {
  // 30 messages of 4000 characters said at once: about 123 KB, over a 64 KiB budget as ONE
  // frame, though neither member has anything waiting.
  await using server = await startServer({ rateLimit: null, sendQueueBytes: 64 * 1024 });
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  await join(bob, "general");
  const text = "x".repeat(4000);
  for (let i = 1; i <= 30; i++) alice.send({ type: "say", room: "general", text, cid: `k${i}` });
  const outcome = await Promise.race([
    bob.waitFor((m) => m.cid === "k30").then(() => "delivered"),
    bob.closed.then((e) => `closed with ${e.code}`),
  ]);
  assert.equal(outcome, "delivered");
  assert.equal(received(bob, "message").length, 30);
  assert.equal(server.hub.stats.disconnects.get("slow_consumer"), undefined);
});

/** `count` stored messages of `text` in `room`. */
function longMessages(room: string, count: number, text: string): NewMessage[] {
  return Array.from({ length: count }, (_, i) => ({ room, from: "seeder", text, ts: 1 + i }));
}

Deno.test("join with since on 1000 messages of 4000 characters is answered within the default budget", async () => {
  // The reply is about 4 MB; the default send budget is 1 MiB.
  const store = new MemoryStore();
  store.append(longMessages("general", 1000, "y".repeat(4000)));
  await using server = await startServer({ store });
  const alice = await server.connect("alice");
  alice.send({ type: "join", room: "general", since: 0 });
  const outcome = await Promise.race([
    alice.waitFor((m) => m.type === "joined").then((m) => `joined with ${m.history.length}`),
    alice.closed.then((e) => `closed with ${e.code} ${e.reason}`),
  ]);
  assert.equal(outcome, "joined with 1000");
});

Deno.test("history of 200 messages of 4000 emoji is answered within the default budget", async () => {
  // 200 × 16 KB = 3.2 MB in one reply; the default send budget is 1 MiB.
  const store = new MemoryStore();
  store.append(longMessages("general", 200, EMOJI.repeat(4000)));
  await using server = await startServer({ store });
  const alice = await server.connect("alice");
  await join(alice, "general", { since: 200 });
  alice.send({ type: "history", room: "general", after: 0, limit: 200 });
  const outcome = await Promise.race([
    alice.waitFor((m) => m.type === "history").then((m) => `history of ${m.messages.length}`),
    alice.closed.then((e) => `closed with ${e.code} ${e.reason}`),
  ]);
  assert.equal(outcome, "history of 200");
});

// ---- shutdown ----

Deno.test("shutdown closes every socket with 1001 server shutting down", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  const idle = await server.open(); // connected, no hello yet
  await server.shutdown();
  for (const c of [alice, bob, idle]) {
    const closed = await closedWithin(c);
    assert.deepEqual([closed.code, closed.reason], [1001, "server shutting down"]);
  }
  assert.equal(server.hub.connections, 0);
});

Deno.test("a message accepted before shutdown is acknowledged before the socket closes with 1001", async () => {
  await using server = await startServer({ store: new SlowStore(200) });
  const alice = await server.connect("alice");
  await join(alice, "general");
  alice.send({ type: "say", room: "general", text: "last words", cid: "last" });
  // The rooms reply proves the say was read; its commit is now in flight for 200 ms.
  await alice.request({ type: "rooms" }, (m) => m.type === "rooms");
  await server.shutdown();
  const closed = await closedWithin(alice);
  const echo = alice.messages.find((m) => m.cid === "last");
  assert.ok(echo !== undefined, "the echo (the acknowledgement) arrived before the close");
  assert.equal(echo.type, "message");
  assert.deepEqual([closed.code, closed.reason], [1001, "server shutting down"]);
  const stored = await server.store.read("general", { after: 0, limit: 10 });
  assert.deepEqual(stored.map((m) => m.cid), ["last"]);
});
