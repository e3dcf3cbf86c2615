/** A room's shared outbound log (hub/room_log.ts), specified with fake sockets and a fake clock. */
import assert from "node:assert/strict";
import { Client } from "../client.ts";
import { STALL_TIMEOUT_MS } from "../ops/limits.ts";
import { type Eviction, RoomLog } from "../hub/room_log.ts";
import { fakeClientOptions, FakeSocket } from "./fakes.ts";

const handler = { hello() {}, command() {}, rejected() {}, slow() {}, closed() {} };

function member(sendQueueBytes = 1 << 20) {
  const socket = new FakeSocket();
  const client = new Client(socket, handler, fakeClientOptions({ sendQueueBytes }));
  return { socket, client, [Symbol.dispose]: () => client.close(1000, "", "client") };
}

const line = (i: number, size = 100) => JSON.stringify({ type: "message", seq: i }).padEnd(size);

Deno.test("members that are caught up are handed the very same frame, built once", () => {
  const log = new RoomLog({ maxFrameBytes: 64 * 1024, windowBytes: 1 << 20 });
  using a = member(), b = member();
  for (let i = 1; i <= 10; i++) log.append(line(i));
  const served = log.serve([a.client, b.client], 0, []);
  assert.deepEqual([served.frames, served.delivered], [2, 20]);
  assert.equal(a.socket.frames.length, 1);
  assert.equal(a.socket.frames[0], b.socket.frames[0]);
  assert.equal(log.heldBytes, 0, "nothing is kept once everyone has it");
});

Deno.test("a member behind gets the rest in later passes, in order, skipping lines not for it", () => {
  const log = new RoomLog({ maxFrameBytes: 250, windowBytes: 1 << 20 });
  using fast = member(), slow = member(1000);
  slow.socket.stalled = true;
  for (let i = 1; i <= 20; i++) log.append(line(i), i % 5 === 0 ? slow.client : undefined);
  log.serve([fast.client, slow.client], 0, []);
  assert.equal(fast.socket.messages.length, 20);
  assert.ok(slow.socket.messages.length < 16, "no more than fits its budget");
  assert.ok(log.heldBytes > 0, "kept for the member behind");
  for (let pass = 1; pass < 40 && log.lagging; pass++) {
    slow.socket.bufferedAmount = 0; // it read everything handed so far
    log.serve([fast.client, slow.client], pass, []);
  }
  assert.equal(log.lagging, false);
  assert.deepEqual(
    slow.socket.messages.map((m) => m.seq),
    Array.from({ length: 20 }, (_, i) => i + 1).filter((i) => i % 5 !== 0),
  );
  assert.equal(log.heldBytes, 0);
});

Deno.test("a member that drains more slowly than the room talks is given up once a window behind", () => {
  const log = new RoomLog({ maxFrameBytes: 250, windowBytes: 2000 });
  using fast = member(), behind = member(500);
  behind.socket.stalled = true;
  const evict: Eviction[] = [];
  let t = 0;
  for (; t < 100 && evict.length === 0; t++) {
    for (let i = 0; i < 3; i++) log.append(line(t * 3 + i)); // 300 B in a pass, 100 B out
    log.serve([fast.client, behind.client], t, evict);
    behind.socket.bufferedAmount = Math.max(0, behind.socket.bufferedAmount - 100);
  }
  assert.deepEqual(evict.map((e) => [e.client === behind.client, e.kind]), [[true, "behind"]]);
  assert.ok(t >= 10 && t <= 14, `about 2000 / (300 - 100) passes, not ${t}`);
  assert.equal(log.lagging, false, "nobody is behind any more");
  assert.equal(log.heldBytes, 0, "and nothing is kept for it");
});

Deno.test("a member that drains nothing is given up after STALL_TIMEOUT_MS, not before", () => {
  const log = new RoomLog({ maxFrameBytes: 250, windowBytes: 1 << 20 });
  using fast = member(), stuck = member(500);
  stuck.socket.stalled = true;
  for (let i = 1; i <= 20; i++) log.append(line(i)); // then the room goes quiet
  const evict: Eviction[] = [];
  for (let t = 0; t < STALL_TIMEOUT_MS; t += 100) {
    log.serve([fast.client, stuck.client], t, evict);
    assert.equal(evict.length, 0, `given up at ${t} ms`);
  }
  log.serve([fast.client, stuck.client], STALL_TIMEOUT_MS + 100, evict);
  assert.deepEqual(evict.map((e) => [e.client === stuck.client, e.kind]), [[true, "stalled"]]);
});

Deno.test("a member that enters while lines wait is owed none of them, only what comes after", () => {
  const log = new RoomLog({ maxFrameBytes: 64 * 1024, windowBytes: 1 << 20 });
  using before = member(), joiner = member();
  log.append(line(1));
  log.append(line(2));
  log.enter(joiner.client);
  log.append(line(3));
  log.serve([before.client, joiner.client], 0, []);
  assert.deepEqual(before.socket.messages.map((m) => m.seq), [1, 2, 3]);
  assert.deepEqual(joiner.socket.messages.map((m) => m.seq), [3]);
  assert.equal(log.lagging, false, "the joiner is with the others again");
  log.append(line(4));
  log.serve([before.client, joiner.client], 1, []);
  assert.equal(before.socket.frames.at(-1), joiner.socket.frames.at(-1), "one shared frame again");
  assert.equal(log.heldBytes, 0);
});
