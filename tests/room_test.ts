/** A room's cache of recent messages (hub/room.ts): bounded in count and in bytes. */
import assert from "node:assert/strict";
import { Room } from "../hub/room.ts";
import { ROOM_CACHE_BYTES, ROOM_CACHE_MESSAGES } from "../ops/limits.ts";
import { messageLine } from "../protocol/protocol.ts";

const room = () => new Room("general", { maxFrameBytes: 65536, windowBytes: 1 << 20 });

function fill(r: Room, count: number, textChars: number) {
  for (let seq = 1; seq <= count; seq++) {
    const m = { room: "general", seq, from: "alice", text: "x".repeat(textChars), ts: seq };
    r.remember(m, messageLine(m));
  }
}

Deno.test("the cache of short messages keeps at most twice ROOM_CACHE_MESSAGES, and the newest", () => {
  const r = room();
  fill(r, ROOM_CACHE_MESSAGES * 5, 10);
  const newest = r.cached(0, Number.MAX_SAFE_INTEGER, ROOM_CACHE_MESSAGES, true);
  assert.equal(newest?.length, ROOM_CACHE_MESSAGES);
  assert.equal(JSON.parse(newest!.at(-1)!).seq, ROOM_CACHE_MESSAGES * 5);
  assert.equal(r.cached(0, 10, 5, false), null, "the oldest are gone: a read goes to the store");
});

Deno.test("the cache of long messages is bounded in bytes, not only in count", () => {
  const r = room();
  fill(r, 600, 16_000); // ~64 KB each as counted: 600 of them would be ~38 MB
  assert.ok(r.cacheBytes <= ROOM_CACHE_BYTES * 2, `${r.cacheBytes} bytes cached`);
  assert.ok(r.cacheBytes > 0);
  const newest = r.cached(590, Number.MAX_SAFE_INTEGER, 10, true);
  assert.equal(newest?.length, 10, "the newest are still served from memory");
  assert.equal(r.cached(0, 100, 10, false), null);
});
