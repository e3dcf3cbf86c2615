/**
 * Refusals count (issue 14, item 2): a malformed frame takes a control token, and every refusal,
 * the client's own or the hub's, counts toward the flood window that ends in 4029. Pure units on
 * fake sockets and a manual clock.
 */
import assert from "node:assert/strict";
import {
  Client,
  type ClientHandler,
  CONTROL_RATE_FACTOR,
  type DisconnectReason,
  FLOOD_REJECTIONS,
  FLOOD_WINDOW_MS,
} from "../client.ts";
import type { Command, ErrorCode } from "../protocol/protocol.ts";
import type { Rate } from "../http/rate_limit.ts";
import { Hub } from "../hub.ts";
import { MemoryStore } from "../store/store.ts";
import { fakeClientOptions, FakeSocket } from "./fakes.ts";

/** A handler that welcomes at once and records what it heard. */
class RecordingHandler implements ClientHandler {
  commands: Command[] = [];
  rejections: ErrorCode[] = [];
  closes: DisconnectReason[] = [];
  hello(client: Client): void {
    client.ready();
  }
  command(_client: Client, command: Command): void {
    this.commands.push(command);
  }
  rejected(_client: Client, code: ErrorCode): void {
    this.rejections.push(code);
  }
  closed(_client: Client, reason: DisconnectReason): void {
    this.closes.push(reason);
  }
  slow(client: Client): void {
    client.close(4008, "slow consumer", "slow_consumer");
  }
}

const RATE = { perSecond: 10, burst: 20 };

function greeted(rate: Rate | null) {
  const clock = { now: 1_700_000_000_000 };
  const socket = new FakeSocket();
  const handler = new RecordingHandler();
  const client = new Client(socket, handler, fakeClientOptions({ rate, now: () => clock.now }));
  client.receive(JSON.stringify({ type: "hello", name: "mallory" }));
  return { clock, socket, handler, client };
}

const MALFORMED = ["{}", '{"type":"nope"}', "not json", "[]", '{"type":"say"}'];

for (const rate of [RATE, null]) {
  const how = rate === null ? "with rate limits off" : "with rate limits on";
  Deno.test(`${how}, the ${FLOOD_REJECTIONS + 1}st malformed frame within a minute closes the client with 4029 after its reply`, () => {
    const { socket, handler, client } = greeted(rate);
    for (let i = 0; i < FLOOD_REJECTIONS; i++) client.receive(MALFORMED[i % MALFORMED.length]);
    assert.equal(socket.closeCode, undefined);
    assert.equal(socket.of("error").length, FLOOD_REJECTIONS);
    client.receive("{}");
    assert.deepEqual([socket.closeCode, socket.closeReason], [4029, "kept flooding"]);
    assert.equal(socket.of("error").length, FLOOD_REJECTIONS + 1, "the last refusal is sent");
    assert.deepEqual(handler.closes, ["rate_limited"]);
    // Nothing more is read or answered once closed.
    client.receive("{}");
    assert.equal(socket.frames.length, FLOOD_REJECTIONS + 1);
  });
}

Deno.test("malformed frames spread over more than the flood window keep the connection", () => {
  const { clock, socket, client } = greeted(null);
  const step = Math.ceil(FLOOD_WINDOW_MS / FLOOD_REJECTIONS) + 1;
  for (let i = 0; i < FLOOD_REJECTIONS * 3; i++) {
    client.receive("{}");
    clock.now += step;
  }
  assert.equal(socket.closeCode, undefined);
  assert.equal(socket.of("error").length, FLOOD_REJECTIONS * 3);
});

Deno.test("a malformed frame takes a control token: after a burst of them a rooms command is rate limited", () => {
  // A small burst, so the bucket runs dry well before the flood window fills.
  const rate = { perSecond: 1, burst: 4 };
  const { socket, handler, client } = greeted(rate);
  const controlBurst = rate.burst * CONTROL_RATE_FACTOR;
  assert.ok(controlBurst + 2 <= FLOOD_REJECTIONS);
  for (let i = 0; i < controlBurst; i++) client.receive('{"type":"nope"}');
  assert.deepEqual(new Set(socket.of("error").map((m) => m.code)), new Set(["unknown_type"]));
  client.receive(JSON.stringify({ type: "rooms", cid: "q1" }));
  assert.deepEqual(handler.commands, []);
  const last = socket.messages.at(-1)!;
  assert.deepEqual([last.type, last.code, last.cid], ["error", "rate_limited", "q1"]);
  // Once out of tokens a malformed frame is refused as rate_limited, keeping its cid.
  client.receive(JSON.stringify({ type: "say", cid: "c9" }));
  const again = socket.messages.at(-1)!;
  assert.deepEqual([again.code, again.cid], ["rate_limited", "c9"]);
  // Messages have their own bucket, untouched.
  client.receive(JSON.stringify({ type: "say", room: "general", text: "hi" }));
  assert.equal(handler.commands.length, 1);
});

Deno.test("rate_limited refusals and parse errors add up in one flood window", () => {
  const { socket, client } = greeted(RATE);
  const half = FLOOD_REJECTIONS / 2;
  for (let i = 0; i < RATE.burst + half; i++) {
    client.receive(JSON.stringify({ type: "say", room: "general", text: "x" }));
  }
  assert.equal(socket.of("error").length, half);
  for (let i = 0; i < half; i++) client.receive("{}");
  assert.equal(socket.closeCode, undefined);
  client.receive("{}");
  assert.equal(socket.closeCode, 4029);
});

/** A hub on a manual clock with rate limits as given, and a way to say hello over a fake socket. */
function hubRig(rate: Rate | null) {
  const clock = { now: 1_700_000_000_000 };
  const store = new MemoryStore();
  const hub = new Hub({
    store,
    maxRoomsPerClient: 32,
    welcomeLimits: {},
    version: "test",
    now: () => clock.now,
  });
  const hello = (name: string) => {
    const socket = new FakeSocket();
    const client = new Client(socket, hub, fakeClientOptions({ rate, now: () => clock.now }));
    hub.add(client);
    client.receive(JSON.stringify({ type: "hello", name }));
    return { client, socket };
  };
  return { hub, store, hello };
}

for (const rate of [RATE, null]) {
  const how = rate === null ? "with rate limits off" : "with rate limits on";
  Deno.test(`${how}, the hub's refusals count too: the ${FLOOD_REJECTIONS + 1}st not_in_room closes with 4029`, async () => {
    const { hub, hello } = hubRig(rate);
    const { client, socket } = hello("mallory");
    const typing = JSON.stringify({ type: "typing", room: "nowhere" });
    for (let i = 0; i < FLOOD_REJECTIONS; i++) client.receive(typing);
    assert.equal(socket.closeCode, undefined);
    assert.equal(socket.of("error").length, FLOOD_REJECTIONS);
    client.receive(typing);
    assert.deepEqual([socket.closeCode, socket.closeReason], [4029, "kept flooding"]);
    assert.equal(hub.stats.disconnects.get("rate_limited"), 1);
    await hub.shutdown();
  });
}

Deno.test("unavailable refusals do not count toward the flood window: they ask the client to resend", async () => {
  const { hub, store, hello } = hubRig(null);
  const { client, socket } = hello("alice");
  client.receive(JSON.stringify({ type: "join", room: "general" }));
  await new Promise((r) => setTimeout(r, 0));
  store.append = () => {
    throw new Error("disk full");
  };
  for (let i = 0; i < FLOOD_REJECTIONS * 2; i++) {
    client.receive(JSON.stringify({ type: "say", room: "general", text: "x", cid: `u${i}` }));
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(
    socket.of("error").filter((m) => m.code === "unavailable").length,
    FLOOD_REJECTIONS * 2,
  );
  assert.equal(socket.closeCode, undefined);
  await hub.shutdown();
});
