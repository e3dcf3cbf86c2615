/**
 * docs/protocol.md over real sockets: handshake and names, rooms and presence, messages, history,
 * resends, direct messages, typing and the error replies. Each test starts the server in this
 * process on a free port (see server_fixture.ts) and shuts it down, so leak checks stay on.
 */
import assert from "node:assert/strict";
import { Client } from "../client.ts";
import { fakeClientOptions, FakeSocket } from "./fakes.ts";
import { Hub } from "../hub.ts";
import { CloseCode, MAX_CONNECTION_ID_CHARS } from "../protocol/protocol.ts";
import { MemoryStore, type NewMessage } from "../store/store.ts";
import type { Msg, TestClient } from "./helpers.ts";
import { closedWithin } from "./helpers.ts";
import { barrier, join, received, SlowStore, startServer } from "./server_fixture.ts";

const DAY_MS = 86_400_000;

/** `count` stored messages for `room`, texts "m1".."m<count>", to seed a store. */
function seed(room: string, count: number, from = "seeder"): NewMessage[] {
  return Array.from({ length: count }, (_, i) => ({ room, from, text: `m${i + 1}`, ts: 1 + i }));
}

const seqs = (messages: Msg[]): number[] => messages.map((m) => m.seq);
const range = (lo: number, hi: number): number[] =>
  Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

/** Sends `texts` as says with cids "<prefix>1".. and waits for the sender's last echo. */
async function sayAll(c: TestClient, room: string, count: number, prefix = "s"): Promise<Msg[]> {
  for (let i = 1; i <= count; i++) {
    c.send({ type: "say", room, text: `${prefix}${i}`, cid: `${prefix}${i}` });
  }
  await c.waitFor((m) => m.type === "message" && m.cid === `${prefix}${count}`);
  return received(c, "message", room).filter((m) => String(m.cid).startsWith(prefix));
}

/** Sends a hello and waits for the server to close the socket. */
async function helloClosed(c: TestClient, hello: Msg | string): Promise<CloseEvent> {
  c.send(hello);
  return await closedWithin(c);
}

// ---- handshake ----

Deno.test("welcome carries the name, a base64url resume token of at least 128 bits, the limits and the version", async () => {
  await using server = await startServer();
  const c = await server.connect("Alice");
  const welcome = c.messages[0];
  assert.equal(welcome.type, "welcome");
  assert.equal(welcome.name, "Alice");
  assert.match(welcome.resume, /^[A-Za-z0-9_-]+$/);
  assert.ok(welcome.resume.length >= 22, `token ${welcome.resume} is under 128 bits`);
  // Every documented limit, with its default (the welcome may carry more).
  const limits = welcome.limits;
  assert.deepEqual(
    {
      maxTextChars: limits.maxTextChars,
      maxFrameBytes: limits.maxFrameBytes,
      maxRooms: limits.maxRooms,
      historyLimit: limits.historyLimit,
      rate: limits.rate,
    },
    {
      maxTextChars: 4000,
      maxFrameBytes: 16384,
      maxRooms: 32,
      historyLimit: 200,
      rate: { perSecond: 10, burst: 20 },
    },
  );
  assert.equal(welcome.version, "0.1.0");
  const other = await server.connect("bob");
  assert.notEqual(other.messages[0].resume, welcome.resume, "tokens must differ per name");
});

Deno.test("a first frame other than hello is closed with 4000", async () => {
  await using server = await startServer();
  const c = await server.open();
  const closed = await helloClosed(c, { type: "join", room: "general" });
  assert.equal(closed.code, 4000);
  assert.ok(closed.reason.length > 0, "the close reason says why");
  assert.deepEqual(c.messages, [], "no welcome");
});

Deno.test("a first frame that is not JSON is closed with 4000", async () => {
  await using server = await startServer();
  const closed = await helloClosed(await server.open(), "hello alice");
  assert.equal(closed.code, 4000);
});

for (
  const [label, name] of [
    ["an empty name", ""],
    ["a 33-character name", "a".repeat(33)],
    ["a name with a space", "a b"],
    ["a name with angle brackets", "<x>"],
    ["a name that is not a string", 42],
    ["no name at all", undefined],
  ] as const
) {
  Deno.test(`a hello with ${label} is closed with 4000`, async () => {
    await using server = await startServer();
    const c = await server.open();
    const closed = await helloClosed(c, { type: "hello", name });
    assert.equal(closed.code, 4000);
    assert.deepEqual(c.messages, []);
  });
}

Deno.test("names of 32 Unicode letters, digits and _ - . are accepted", async () => {
  await using server = await startServer();
  for (const name of ["a".repeat(32), "Zoë_the-1st.", "李雷", "Ωmega"]) {
    const c = await server.connect(name);
    assert.equal(c.messages[0].name, name);
  }
});

Deno.test("no hello within the handshake timeout is closed with 4000", async () => {
  await using server = await startServer({ handshakeTimeoutMs: 300 });
  const c = await server.open();
  const started = performance.now();
  const closed = await closedWithin(c);
  assert.equal(closed.code, 4000);
  assert.equal(closed.reason, "no hello in time");
  assert.ok(performance.now() - started < 3000);
});

Deno.test("a second hello with the same name and no token is closed with 4009", async () => {
  await using server = await startServer();
  const first = await server.connect("alice");
  const closed = await helloClosed(await server.open(), { type: "hello", name: "alice" });
  assert.deepEqual([closed.code, closed.reason], [4009, "name taken"]);
  assert.equal(first.socket.readyState, WebSocket.OPEN, "the holder keeps its connection");
});

Deno.test("names collide case-insensitively: alice is taken while Alice is connected", async () => {
  await using server = await startServer();
  await server.connect("Alice");
  const closed = await helloClosed(await server.open(), { type: "hello", name: "alice" });
  assert.deepEqual([closed.code, closed.reason], [4009, "name taken"]);
});

Deno.test("names collide after NFKC: fullwidth ａｌｉｃｅ is taken while alice is connected", async () => {
  await using server = await startServer();
  await server.connect("alice");
  const closed = await helloClosed(await server.open(), { type: "hello", name: "ａｌｉｃｅ" });
  assert.deepEqual([closed.code, closed.reason], [4009, "name taken"]);
});

Deno.test("a hello with a wrong resume token for a connected name is closed with 4009", async () => {
  await using server = await startServer();
  await server.connect("alice");
  const closed = await helloClosed(await server.open(), {
    type: "hello",
    name: "alice",
    resume: "A".repeat(43),
  });
  assert.deepEqual([closed.code, closed.reason], [4009, "name taken"]);
});

Deno.test("a hello with the session token opens a second connection beside the first, both live, with a new token", async () => {
  await using server = await startServer();
  const old = await server.connect("alice");
  const token = old.messages[0].resume;
  const fresh = await server.connect("alice", { resume: token });
  assert.equal(fresh.messages[0].name, "alice");
  assert.notEqual(fresh.messages[0].resume, token, "signing in rotates the token");
  assert.equal(typeof fresh.messages[0].resume, "string");
  await join(old, "general");
  await join(fresh, "general");
  const echo = await barrier(fresh, "general");
  assert.equal(echo.from, "alice");
  // The first connection is still open and hears what the second says.
  await old.waitFor((m) => m.type === "message" && m.id === echo.id);
});

Deno.test("a hello with a tab's connection id replaces that tab's stale socket with 4010 replaced", async () => {
  await using server = await startServer();
  const old = await server.connect("alice", { connection: "tab-1" });
  const fresh = await server.connect("alice", {
    resume: old.messages[0].resume,
    connection: "tab-1",
  });
  assert.equal(fresh.messages[0].name, "alice");
  const closed = await closedWithin(old);
  assert.deepEqual([closed.code, closed.reason], [4010, "replaced"]);
});

Deno.test("a connection id longer than MAX_CONNECTION_ID_CHARS is refused with bad_request", async () => {
  await using server = await startServer();
  const closed = await helloClosed(await server.open(), {
    type: "hello",
    name: "alice",
    connection: "x".repeat(MAX_CONNECTION_ID_CHARS + 1),
  });
  assert.equal(closed.code, CloseCode.badHandshake);
  assert.match(closed.reason, /connection must be at most 64 characters/);
});

Deno.test("the session token also matches the name case-insensitively; the account keeps its spelling", async () => {
  await using server = await startServer();
  const old = await server.connect("alice");
  const fresh = await server.connect("ALICE", { resume: old.messages[0].resume });
  assert.equal(fresh.messages[0].name, "alice");
});

Deno.test("after a disconnect the name stays its account's: a stranger without the token gets 4009", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await alice.close();
  const closed = await helloClosed(await server.open(), { type: "hello", name: "alice" });
  assert.deepEqual([closed.code, closed.reason], [4009, "name taken"]);
});

Deno.test("after a disconnect the token holder gets the name back, with a new token", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const token = alice.messages[0].resume;
  await alice.close();
  const back = await server.connect("alice", { resume: token });
  assert.equal(back.messages[0].name, "alice");
  assert.notEqual(back.messages[0].resume, token, "signing in rotates the token");
});

/** A hub on a manual clock and an account TTL of a day, with a way to say hello over a fake socket. */
function clockedHub() {
  const clock = { now: 1_700_000_000_000 };
  const hub = new Hub({
    store: new MemoryStore(),
    maxRoomsPerClient: 32,
    welcomeLimits: {},
    version: "test",
    now: () => clock.now,
    accountTtlMs: DAY_MS,
  });
  const hello = (name: string, resume?: string) => {
    const socket = new FakeSocket();
    const client = new Client(socket, hub, fakeClientOptions({ now: () => clock.now }));
    hub.add(client);
    client.receive(
      JSON.stringify(resume ? { type: "hello", name, resume } : { type: "hello", name }),
    );
    return { client, socket };
  };
  return { hub, clock, hello };
}

Deno.test("an account is kept just short of its TTL after its last use", async () => {
  const { hub, clock, hello } = clockedHub();
  const first = hello("alice");
  first.client.socketClosed("client");
  clock.now += DAY_MS - 1;
  hub.sweep();
  await new Promise((r) => setTimeout(r, 0));
  const stranger = hello("alice");
  assert.equal(stranger.socket.closeCode, 4009);
  await hub.shutdown();
});

Deno.test("an account unused for its TTL is released: the name is free for anyone, the old token dead", async () => {
  const { hub, clock, hello } = clockedHub();
  const first = hello("alice");
  const oldToken = first.socket.messages[0].resume;
  first.client.socketClosed("client");
  clock.now += DAY_MS + 1;
  hub.sweep();
  await new Promise((r) => setTimeout(r, 0));
  const stranger = hello("Alice");
  assert.equal(stranger.socket.closeCode, undefined);
  assert.equal(stranger.socket.messages[0].type, "welcome");
  assert.notEqual(stranger.socket.messages[0].resume, oldToken);
  // The old token no longer signs in: the name is the new account's.
  const late = hello("alice", oldToken);
  assert.equal(late.socket.closeCode, 4009);
  await hub.shutdown();
});

// ---- rooms ----

Deno.test("join answers joined with the members, the last 50 messages oldest first and the latest seq", async () => {
  const store = new MemoryStore();
  store.append(seed("general", 60));
  await using server = await startServer({ store });
  const bob = await server.connect("bob");
  await join(bob, "general");
  const alice = await server.connect("alice");
  const joined = await join(alice, "general");
  assert.equal(joined.room, "general");
  assert.deepEqual([...joined.members].sort(), ["alice", "bob"]);
  assert.deepEqual(seqs(joined.history), range(11, 60));
  assert.equal(joined.history[0].text, "m11");
  assert.equal(joined.history[0].type, "message");
  assert.equal(joined.seq, 60);
  assert.equal(joined.more, undefined);
  assert.equal(joined.truncated, undefined);
});

Deno.test("other members receive a join event; the joiner does not receive its own", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  const bob = await server.connect("bob");
  await join(bob, "general");
  const event = await alice.waitFor((m) => m.type === "join");
  assert.equal(event.room, "general");
  assert.equal(event.user, "bob");
  assert.equal(typeof event.ts, "number");
  await barrier(alice, "general", [bob]);
  assert.deepEqual(received(bob, "join").filter((m) => m.user === "bob"), []);
});

Deno.test("a joiner does not receive presence events from before its join", async () => {
  // A slow commit holds the room's outbox; alice's join event waits in it while bob joins.
  await using server = await startServer({ store: new SlowStore(200) });
  const carol = await server.connect("carol");
  await join(carol, "general");
  carol.send({ type: "say", room: "general", text: "slow", cid: "slow" }); // commit in flight
  await carol.request({ type: "rooms" }, (m) => m.type === "rooms");
  const alice = await server.connect("alice");
  await join(alice, "general");
  const bob = await server.connect("bob");
  const joined = await join(bob, "general");
  assert.deepEqual([...joined.members].sort(), ["alice", "bob", "carol"]);
  await bob.waitFor((m) => m.cid === "slow");
  await barrier(carol, "general", [alice, bob]);
  assert.deepEqual(
    received(bob, "join").map((m) => m.user),
    [],
    "alice was already in joined.members; a later 'alice joined' contradicts it",
  );
});

Deno.test("leave answers left and the other members receive a leave event", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  await join(bob, "general");
  const left = await bob.request({ type: "leave", room: "general" }, (m) => m.type === "left");
  assert.deepEqual(left, { type: "left", room: "general" });
  const event = await alice.waitFor((m) => m.type === "leave");
  assert.deepEqual([event.room, event.user, typeof event.ts], ["general", "bob", "number"]);
  // Bob no longer receives the room.
  await barrier(alice, "general");
  assert.deepEqual(received(bob, "message"), []);
});

Deno.test("a member's disconnect sends the other members a leave event", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  await join(bob, "general");
  await bob.close();
  const event = await alice.waitFor((m) => m.type === "leave");
  assert.deepEqual([event.room, event.user], ["general", "bob"]);
});

Deno.test("rooms lists every room with members now, by name, with member counts", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "zeta");
  await join(alice, "general");
  await join(bob, "general");
  await join(bob, "empty-soon");
  await bob.request({ type: "leave", room: "empty-soon" }, (m) => m.type === "left");
  const reply = await alice.request({ type: "rooms" }, (m) => m.type === "rooms");
  assert.deepEqual(reply, {
    type: "rooms",
    rooms: [{ room: "general", members: 2 }, { room: "zeta", members: 1 }],
  });
});

Deno.test("room names are lower-cased", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  const joined = await join(alice, "General");
  assert.equal(joined.room, "general");
  const second = await join(bob, "GENERAL");
  assert.deepEqual([...second.members].sort(), ["alice", "bob"]);
  bob.send({ type: "say", room: "GeNeRaL", text: "hi", cid: "c1" });
  const m = await alice.waitFor((m) => m.type === "message");
  assert.equal(m.room, "general");
});

for (
  const [label, room] of [
    ["with a space", "a b"],
    ["that is empty", ""],
    ["of 33 characters", "r".repeat(33)],
    ["with a non-ASCII letter", "über"],
    ["with a slash", "a/b"],
  ] as const
) {
  Deno.test(`joining a room ${label} is refused with room_invalid`, async () => {
    await using server = await startServer();
    const alice = await server.connect("alice");
    const reply = await alice.request({ type: "join", room }, (m) => m.type === "error");
    assert.equal(reply.code, "room_invalid");
    assert.equal(alice.socket.readyState, WebSocket.OPEN);
  });
}

Deno.test("joining a 33rd room is refused with too_many_rooms", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  for (let i = 1; i <= 32; i++) await join(alice, `room${i}`);
  const reply = await alice.request({ type: "join", room: "room33" }, (m) => m.type === "error");
  assert.equal(reply.code, "too_many_rooms");
  // Leaving one makes room for another.
  await alice.request({ type: "leave", room: "room1" }, (m) => m.type === "left");
  await join(alice, "room33");
});

Deno.test("joining a room already joined answers joined again and tells no one", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  await join(bob, "general");
  await barrier(alice, "general", [bob]);
  const again = await join(bob, "general", { since: 0 });
  assert.deepEqual([...again.members].sort(), ["alice", "bob"]);
  assert.deepEqual(seqs(again.history), [1]);
  await barrier(alice, "general", [bob]);
  assert.equal(received(alice, "join").length, 1, "one join event for bob, not two");
});

Deno.test("leaving a room not joined is refused with not_in_room", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const reply = await alice.request({ type: "leave", room: "general" }, (m) => m.type === "error");
  assert.equal(reply.code, "not_in_room");
});

// ---- messages ----

Deno.test("seq starts at 1 and rises by one per message; the sender's echo carries its cid", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  const echoes = await sayAll(alice, "general", 5);
  assert.deepEqual(seqs(echoes), [1, 2, 3, 4, 5]);
  assert.deepEqual(echoes.map((m) => m.cid), ["s1", "s2", "s3", "s4", "s5"]);
  assert.deepEqual(echoes.map((m) => m.text), ["s1", "s2", "s3", "s4", "s5"]);
  // Seqs are per room.
  await join(alice, "other");
  const other = await sayAll(alice, "other", 1, "o");
  assert.equal(other[0].seq, 1);
});

Deno.test("every member, the sender included, receives a message with server-set from and a numeric ts", async () => {
  await using server = await startServer();
  const alice = await server.connect("Alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  await join(bob, "general");
  const before = Date.now();
  alice.send({ type: "say", room: "general", text: "hi", cid: "c1", from: "bob", seq: 99, ts: 1 });
  const [echo, seen] = await Promise.all([
    alice.waitFor((m) => m.type === "message"),
    bob.waitFor((m) => m.type === "message"),
  ]);
  assert.deepEqual(echo, seen);
  assert.equal(echo.from, "Alice", "a client cannot spoof from");
  assert.equal(echo.seq, 1);
  assert.equal(echo.room, "general");
  assert.equal(echo.text, "hi");
  assert.equal(echo.cid, "c1");
  assert.equal(typeof echo.ts, "number");
  assert.ok(echo.ts >= before - 1000 && echo.ts <= Date.now() + 1000, "ts is the server's clock");
});

Deno.test("a message without cid carries none", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  alice.send({ type: "say", room: "general", text: "hi" });
  const echo = await alice.waitFor((m) => m.type === "message");
  assert.equal("cid" in echo, false);
});

// ---- history ----

Deno.test("history with before and limit returns the newest messages before it, oldest first", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  await sayAll(alice, "general", 10);
  const reply = await alice.request(
    { type: "history", room: "general", before: 8, limit: 3 },
    (m) => m.type === "history",
  );
  assert.equal(reply.room, "general");
  assert.deepEqual(seqs(reply.messages), [5, 6, 7]);
  assert.equal(reply.truncated, undefined);
});

Deno.test("history with after and limit pages forward, oldest first", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  await sayAll(alice, "general", 10);
  const reply = await alice.request(
    { type: "history", room: "general", after: 3, limit: 2 },
    (m) => m.type === "history",
  );
  assert.deepEqual(seqs(reply.messages), [4, 5]);
});

Deno.test("history with neither bound returns the newest limit messages (default 50)", async () => {
  const store = new MemoryStore();
  store.append(seed("general", 70));
  await using server = await startServer({ store });
  const alice = await server.connect("alice");
  await join(alice, "general");
  const some = await alice.request(
    { type: "history", room: "general", limit: 4 },
    (m) => m.type === "history",
  );
  assert.deepEqual(seqs(some.messages), [67, 68, 69, 70]);
  const fifty = await alice.request(
    { type: "history", room: "general" },
    (m) => m.type === "history",
  );
  assert.deepEqual(seqs(fifty.messages), range(21, 70));
});

Deno.test("history reads the store when the room's cache does not cover the range", async () => {
  const store = new MemoryStore();
  store.append(seed("general", 300));
  await using server = await startServer({ store });
  const alice = await server.connect("alice");
  await join(alice, "general");
  const back = await alice.request(
    { type: "history", room: "general", before: 101, limit: 200 },
    (m) => m.type === "history",
  );
  assert.deepEqual(seqs(back.messages), range(1, 100));
  assert.equal(back.truncated, undefined);
  const forward = await alice.request(
    { type: "history", room: "general", after: 250, limit: 200 },
    (m) => m.type === "history",
  );
  assert.deepEqual(seqs(forward.messages), range(251, 300));
});

for (
  const [label, fields] of [
    ["a limit over 200", { limit: 201 }],
    ["a limit of 0", { limit: 0 }],
    ["a fractional limit", { limit: 1.5 }],
    ["both before and after", { before: 5, after: 1 }],
    ["a negative before", { before: -1 }],
  ] as const
) {
  Deno.test(`history with ${label} is refused with bad_request`, async () => {
    await using server = await startServer();
    const alice = await server.connect("alice");
    await join(alice, "general");
    const reply = await alice.request(
      { type: "history", room: "general", ...fields, cid: "h1" },
      (m) => m.type === "error" || m.type === "history",
    );
    assert.equal(reply.code, "bad_request");
    assert.equal(reply.cid, "h1");
  });
}

Deno.test("history in a room not joined is refused with not_in_room", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(bob, "general");
  const reply = await alice.request(
    { type: "history", room: "general" },
    (m) => m.type === "error" || m.type === "history",
  );
  assert.equal(reply.code, "not_in_room");
});

Deno.test("join with since returns exactly the messages after since, and the latest seq", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  await sayAll(alice, "general", 12);
  const bob = await server.connect("bob");
  const joined = await join(bob, "general", { since: 7 });
  assert.deepEqual(seqs(joined.history), [8, 9, 10, 11, 12]);
  assert.equal(joined.seq, 12);
  assert.equal(joined.more, undefined);
  assert.equal(joined.truncated, undefined);
  const none = await join(await server.connect("carol"), "general", { since: 12 });
  assert.deepEqual(none.history, []);
});

Deno.test("join with since reads the store for a room nobody is in", async () => {
  const store = new MemoryStore();
  store.append(seed("general", 20));
  await using server = await startServer({ store });
  const alice = await server.connect("alice");
  const joined = await join(alice, "general", { since: 15 });
  assert.deepEqual(seqs(joined.history), [16, 17, 18, 19, 20]);
  assert.equal(joined.seq, 20);
  // New messages continue the seq.
  const echo = await barrier(alice, "general");
  assert.equal(echo.seq, 21);
});

Deno.test("join with since reports truncated when retention removed messages asked for", async () => {
  const store = new MemoryStore({ retention: { maxMessagesPerRoom: 5 } });
  store.append(seed("general", 10));
  await using server = await startServer({ store });
  const alice = await server.connect("alice");
  const joined = await join(alice, "general", { since: 2 });
  assert.deepEqual(seqs(joined.history), [6, 7, 8, 9, 10]);
  assert.equal(joined.truncated, true);
  assert.equal(joined.seq, 10);
  // Asking only for what is still kept is not truncated.
  const bob = await server.connect("bob");
  const kept = await join(bob, "general", { since: 6 });
  assert.deepEqual(seqs(kept.history), [7, 8, 9, 10]);
  assert.equal(kept.truncated, undefined);
});

Deno.test("history with before reports truncated when retention removed messages in the range", async () => {
  const store = new MemoryStore({ retention: { maxMessagesPerRoom: 5 } });
  store.append(seed("general", 10));
  await using server = await startServer({ store });
  const alice = await server.connect("alice");
  await join(alice, "general", { since: 10 });
  const reply = await alice.request(
    { type: "history", room: "general", before: 8, limit: 5 },
    (m) => m.type === "history",
  );
  assert.deepEqual(seqs(reply.messages), [6, 7]);
  assert.equal(reply.truncated, true);
});

Deno.test("retention holds in an active room too: a joiner with since gets only the kept messages, truncated", async () => {
  // Messages said while the room is active are cached by the hub; retention must still apply.
  await using server = await startServer({ retention: { maxMessagesPerRoom: 5 } });
  const alice = await server.connect("alice");
  await join(alice, "general");
  await sayAll(alice, "general", 10);
  assert.deepEqual(seqs(await server.store.read("general", { after: 0, limit: 100 })), [
    6,
    7,
    8,
    9,
    10,
  ]);
  const bob = await server.connect("bob");
  const joined = await join(bob, "general", { since: 0 });
  assert.deepEqual(seqs(joined.history), [6, 7, 8, 9, 10]);
  assert.equal(joined.truncated, true);
});

Deno.test("join with since and more than 1000 messages returns 1000 with more: true; history after pages on", async () => {
  const store = new MemoryStore();
  store.append(seed("general", 1100));
  await using server = await startServer({ store });
  const alice = await server.connect("alice");
  const joined = await join(alice, "general", { since: 0 });
  assert.equal(joined.history.length, 1000);
  assert.deepEqual(seqs(joined.history), range(1, 1000));
  assert.equal(joined.more, true);
  assert.equal(joined.seq, 1100);
  const next = await alice.request(
    { type: "history", room: "general", after: 1000, limit: 200 },
    (m) => m.type === "history",
  );
  assert.deepEqual(seqs(next.messages), range(1001, 1100));
  // Exactly 1000 left is not "more".
  const bob = await server.connect("bob");
  const exact = await join(bob, "general", { since: 100 });
  assert.deepEqual(seqs(exact.history), range(101, 1100));
  assert.equal(exact.more, undefined);
});

// ---- resends ----

Deno.test("a resent cid is stored once; the sender alone gets the original back with the same seq", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  await join(bob, "general");
  const first = await alice.request(
    { type: "say", room: "general", text: "hello", cid: "dup" },
    (m) => m.type === "message" && m.cid === "dup",
  );
  const again = await alice.request(
    { type: "say", room: "general", text: "hello (resent)", cid: "dup" },
    (m) => m.type === "message" && m.cid === "dup",
  );
  assert.deepEqual(again, first, "the original message, same seq and text");
  const next = await barrier(alice, "general", [bob]);
  assert.equal(next.seq, first.seq + 1, "the resend took no seq");
  assert.equal(received(bob, "message").filter((m) => m.cid === "dup").length, 1);
  const stored = await server.store.read("general", { after: 0, limit: 100 });
  assert.equal(stored.filter((m) => m.cid === "dup").length, 1);
});

Deno.test("a cid resent before the first copy is committed is stored once", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  await join(bob, "general");
  alice.send({ type: "say", room: "general", text: "one", cid: "twice" });
  alice.send({ type: "say", room: "general", text: "one", cid: "twice" });
  await barrier(alice, "general", [bob]);
  assert.equal(received(bob, "message").filter((m) => m.cid === "twice").length, 1);
  const mine = received(alice, "message").filter((m) => m.cid === "twice");
  assert.ok(mine.length >= 1 && mine.every((m) => m.seq === 1), JSON.stringify(mine));
  const stored = await server.store.read("general", { after: 0, limit: 100 });
  assert.equal(stored.filter((m) => m.cid === "twice").length, 1);
});

Deno.test("a resent cid is matched per sender and per room", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  await join(alice, "other");
  await join(bob, "general");
  const a = await alice.request(
    { type: "say", room: "general", text: "x", cid: "same" },
    (m) => m.type === "message" && m.cid === "same",
  );
  const b = await bob.request(
    { type: "say", room: "general", text: "y", cid: "same" },
    (m) => m.type === "message" && m.cid === "same" && m.from === "bob",
  );
  const o = await alice.request(
    { type: "say", room: "other", text: "z", cid: "same" },
    (m) => m.type === "message" && m.cid === "same" && m.room === "other",
  );
  assert.deepEqual([a.seq, b.seq, o.seq], [1, 2, 1]);
});

Deno.test("a resend after reconnecting with the resume token is not stored again", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  await join(bob, "general");
  const first = await alice.request(
    { type: "say", room: "general", text: "once", cid: "out-1" },
    (m) => m.type === "message" && m.cid === "out-1",
  );
  const token = alice.messages[0].resume;
  await alice.close();
  const back = await server.connect("alice", { resume: token });
  const joined = await join(back, "general", { since: first.seq });
  assert.deepEqual(joined.history, []);
  const again = await back.request(
    { type: "say", room: "general", text: "once", cid: "out-1" },
    (m) => m.type === "message" && m.cid === "out-1",
  );
  assert.equal(again.seq, first.seq);
  await barrier(back, "general", [bob]);
  assert.equal(received(bob, "message").filter((m) => m.cid === "out-1").length, 1);
});

Deno.test("a member joining during a burst sees every message exactly once, history then live", async () => {
  await using server = await startServer({ rateLimit: null });
  const alice = await server.connect("alice");
  await join(alice, "general");
  for (let i = 1; i <= 300; i++) alice.send({ type: "say", room: "general", text: `t${i}` });
  const bob = await server.connect("bob");
  await alice.waitFor((m) => m.type === "message" && m.seq === 100);
  const joined = await join(bob, "general", { since: 0 });
  for (let i = 301; i <= 400; i++) alice.send({ type: "say", room: "general", text: `t${i}` });
  await bob.waitFor((m) => m.type === "message" && m.text === "t400");
  const live = received(bob, "message");
  const all = [...joined.history, ...live];
  assert.deepEqual(seqs(all), range(1, 400), "no gap, no duplicate");
  assert.equal(joined.seq, joined.history.length === 0 ? 0 : joined.history.at(-1).seq);
});

// ---- direct messages ----

Deno.test("a dm reaches the recipient and the sender, matched case-insensitively, with names as registered", async () => {
  await using server = await startServer();
  const alice = await server.connect("Alice");
  const bob = await server.connect("Bob");
  alice.send({ type: "dm", to: "bOB", text: "psst", cid: "d1" });
  const [mine, theirs] = await Promise.all([
    alice.waitFor((m) => m.type === "dm"),
    bob.waitFor((m) => m.type === "dm"),
  ]);
  assert.deepEqual(mine, theirs);
  assert.equal(mine.from, "Alice");
  assert.equal(mine.to, "Bob");
  assert.equal(mine.text, "psst");
  assert.equal(mine.cid, "d1");
  assert.equal(typeof mine.ts, "number");
});

Deno.test("a dm to someone not connected is refused with unknown_user and the cid", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const reply = await alice.request(
    { type: "dm", to: "nobody", text: "hi", cid: "d2" },
    (m) => m.type === "error" || m.type === "dm",
  );
  assert.deepEqual([reply.code, reply.cid], ["unknown_user", "d2"]);
  // A name that left is not online either, even while reserved.
  const bob = await server.connect("bob");
  await bob.close();
  const gone = await alice.request(
    { type: "dm", to: "bob", text: "hi", cid: "d3" },
    (m) => m.type === "error" || m.type === "dm",
  );
  assert.deepEqual([gone.code, gone.cid], ["unknown_user", "d3"]);
});

Deno.test("a dm is not delivered to third parties", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  const carol = await server.connect("carol");
  await join(alice, "general");
  await join(bob, "general");
  await join(carol, "general");
  alice.send({ type: "dm", to: "bob", text: "secret" });
  await bob.waitFor((m) => m.type === "dm");
  // Anything sent to carol after the dm arrives after it on her socket.
  alice.send({ type: "dm", to: "carol", text: "marker" });
  await carol.waitFor((m) => m.type === "dm");
  await barrier(alice, "general", [bob, carol]);
  assert.deepEqual(received(carol, "dm").map((m) => m.text), ["marker"]);
  assert.equal(carol.messages.some((m) => m.text === "secret"), false);
});

// ---- typing ----

Deno.test("typing is relayed to the other members, not to the typist", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  const carol = await server.connect("carol");
  for (const c of [alice, bob, carol]) await join(c, "general");
  alice.send({ type: "typing", room: "general" });
  const [b, c] = await Promise.all([
    bob.waitFor((m) => m.type === "typing"),
    carol.waitFor((m) => m.type === "typing"),
  ]);
  assert.deepEqual(b, { type: "typing", room: "general", user: "alice" });
  assert.deepEqual(c, b);
  await barrier(alice, "general", [bob, carol]);
  assert.deepEqual(received(alice, "typing"), []);
});

Deno.test("a second typing within 2 s is not relayed; one after 2 s is", async () => {
  const clock = { now: 1_700_000_000_000 };
  await using server = await startServer({ hubNow: () => clock.now });
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  await join(alice, "general");
  await join(bob, "general");
  alice.send({ type: "typing", room: "general" });
  await bob.waitFor((m) => m.type === "typing");
  // The clock moves only between frames the server has handled.
  clock.now += 1999;
  alice.send({ type: "typing", room: "general" });
  await barrier(alice, "general", [bob]);
  assert.equal(received(bob, "typing").length, 1);
  clock.now += 1;
  alice.send({ type: "typing", room: "general" });
  await barrier(alice, "general", [bob]);
  assert.equal(received(bob, "typing").length, 2);
});

Deno.test("typing in a room not joined is refused with not_in_room", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const reply = await alice.request({ type: "typing", room: "general" }, (m) => m.type === "error");
  assert.equal(reply.code, "not_in_room");
});

// ---- error replies ----

Deno.test("a frame that is not JSON is refused with bad_request and the connection stays open", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const reply = await alice.request("{not json" as unknown as Msg, (m) => m.type === "error");
  assert.equal(reply.code, "bad_request");
  assert.equal(typeof reply.message, "string");
  for (const frame of ["[1,2]", "null", '"say"', "42"]) {
    const r = await alice.request(frame as unknown as Msg, (m) => m.type === "error");
    assert.equal(r.code, "bad_request", frame);
  }
  await join(alice, "general");
});

for (
  const [label, frame] of [
    ["a say without text", { type: "say", room: "general" }],
    ["a say without room", { type: "say", text: "hi" }],
    ["a say with an empty text", { type: "say", room: "general", text: "" }],
    ["a say with a numeric text", { type: "say", room: "general", text: 5 }],
    ["a dm without to", { type: "dm", text: "hi" }],
    ["a join with a negative since", { type: "join", room: "general", since: -1 }],
    ["a frame without type", { room: "general" }],
  ] as const
) {
  Deno.test(`${label} is refused with bad_request and its cid`, async () => {
    await using server = await startServer();
    const alice = await server.connect("alice");
    await join(alice, "general");
    const reply = await alice.request({ ...frame, cid: "e1" }, (m) => m.type === "error");
    assert.deepEqual([reply.code, reply.cid], ["bad_request", "e1"]);
    assert.match(reply.message, /^Cannot /);
  });
}

Deno.test("a cid over 64 characters is refused with bad_request; 64 is accepted", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  const reply = await alice.request(
    { type: "say", room: "general", text: "hi", cid: "c".repeat(65) },
    (m) => m.type === "error" || m.type === "message",
  );
  assert.equal(reply.code, "bad_request");
  const ok = await alice.request(
    { type: "say", room: "general", text: "hi", cid: "c".repeat(64) },
    (m) => m.type === "error" || m.type === "message",
  );
  assert.deepEqual([ok.type, ok.cid], ["message", "c".repeat(64)]);
});

Deno.test("an unknown type is refused with unknown_type and its cid", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const reply = await alice.request({ type: "shout", cid: "u1" }, (m) => m.type === "error");
  assert.deepEqual([reply.code, reply.cid], ["unknown_type", "u1"]);
});

Deno.test("a say in a room not joined is refused with not_in_room and its cid", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const reply = await alice.request(
    { type: "say", room: "general", text: "hi", cid: "n1" },
    (m) => m.type === "error",
  );
  assert.deepEqual([reply.code, reply.cid], ["not_in_room", "n1"]);
});

Deno.test("an invalid room in a say is refused with room_invalid and its cid", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const reply = await alice.request(
    { type: "say", room: "no spaces", text: "hi", cid: "r1" },
    (m) => m.type === "error",
  );
  assert.deepEqual([reply.code, reply.cid], ["room_invalid", "r1"]);
});

Deno.test("a second hello after the handshake is refused with bad_request, not closed", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const reply = await alice.request({ type: "hello", name: "bob" }, (m) => m.type === "error");
  assert.equal(reply.code, "bad_request");
  assert.equal(alice.socket.readyState, WebSocket.OPEN);
});

Deno.test("errors from join, leave, history and typing echo the failing frame's cid", async () => {
  // docs/protocol.md: "cid is echoed when the failing frame had one."
  await using server = await startServer({ maxRoomsPerClient: 1 });
  const alice = await server.connect("alice");
  await join(alice, "first");
  const ask = async (frame: Msg) => (await alice.request(frame, (m) => m.type === "error")) as Msg;
  const replies = [
    await ask({ type: "join", room: "second", cid: "j1" }),
    await ask({ type: "leave", room: "second", cid: "l1" }),
    await ask({ type: "history", room: "second", cid: "h1" }),
    await ask({ type: "typing", room: "second", cid: "t1" }),
  ];
  assert.deepEqual(replies.map((r) => [r.code, r.cid]), [
    ["too_many_rooms", "j1"],
    ["not_in_room", "l1"],
    ["not_in_room", "h1"],
    ["not_in_room", "t1"],
  ]);
});
