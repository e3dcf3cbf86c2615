/** The resend guard, specified with plain values for the clock. */
import assert from "node:assert/strict";
import { RESEND_ENTRY_BYTES, ResendGuard } from "../hub/resend_guard.ts";
import { type ChatMessage, nameKey, RESEND_WINDOW_MS } from "../protocol/protocol.ts";

const T0 = 1_000_000;

function message(seq: number, cid: string, ts = T0): ChatMessage {
  return { room: "general", seq, from: "Alice", text: `m${seq}`, ts, cid };
}

Deno.test("a resend within the window gets the stored original; after it, nothing", () => {
  const guard = new ResendGuard();
  const m = message(1, "c1");
  const key = ResendGuard.key("general", nameKey("Alice"), "c1");
  guard.begin(key);
  guard.accepted(key, m);
  assert.equal(guard.original(key, T0 + RESEND_WINDOW_MS), m);
  assert.equal(guard.original(key, T0 + RESEND_WINDOW_MS + 1), undefined);
});

Deno.test("a cid is in flight from begin until the store keeps or refuses it", () => {
  const guard = new ResendGuard();
  const key = ResendGuard.key("general", "alice", "c1");
  assert.equal(guard.inFlight(key), false);
  guard.begin(key);
  assert.equal(guard.inFlight(key), true);
  assert.equal(guard.original(key, T0), undefined, "not accepted yet");
  guard.failed(key);
  assert.equal(guard.inFlight(key), false, "a refused message may be sent again");
  assert.equal(guard.original(key, T0), undefined);
  guard.begin(key);
  guard.accepted(key, message(1, "c1"));
  assert.equal(guard.inFlight(key), false);
  assert.equal(guard.original(key, T0)?.seq, 1);
});

Deno.test("keys tell rooms, senders and cids apart, and a stored message has the key it was sent with", () => {
  const keys = [
    ResendGuard.key("general", "alice", "c1"),
    ResendGuard.key("random", "alice", "c1"),
    ResendGuard.key("general", "bob", "c1"),
    ResendGuard.key("general", "alice", "c2"),
    ResendGuard.key("general", "alice\u0000c", "1"),
  ];
  assert.equal(new Set(keys).size, keys.length);
  assert.equal(
    ResendGuard.keyOf(message(1, "c1")),
    ResendGuard.key("general", nameKey("Alice"), "c1"),
  );
  const { cid: _, ...withoutCid } = message(2, "c2");
  assert.equal(ResendGuard.keyOf(withoutCid), undefined);
});

Deno.test("past its bound the guard forgets the oldest cids first", () => {
  const guard = new ResendGuard(3);
  for (let i = 1; i <= 5; i++) guard.accepted(`k${i}`, message(i, `c${i}`));
  assert.equal(guard.size, 3);
  assert.equal(guard.original("k1", T0), undefined);
  assert.equal(guard.original("k2", T0), undefined);
  assert.deepEqual(["k3", "k4", "k5"].map((k) => guard.original(k, T0)?.seq), [3, 4, 5]);
});

Deno.test("past its byte bound the guard forgets the oldest cids first, whatever the text size", () => {
  const big = (seq: number) => ({ ...message(seq, `c${seq}`), text: "€".repeat(4000) }); // 12 KB
  const each = 12_000 + RESEND_ENTRY_BYTES;
  const guard = new ResendGuard(1000, each * 3);
  for (let i = 1; i <= 5; i++) guard.accepted(`k${i}`, big(i));
  assert.equal(guard.size, 3);
  assert.equal(guard.bytes, each * 3);
  assert.equal(guard.original("k2", T0), undefined);
  assert.deepEqual(["k3", "k4", "k5"].map((k) => guard.original(k, T0)?.seq), [3, 4, 5]);
  guard.expire(T0 + 60 * 60_000);
  assert.deepEqual([guard.size, guard.bytes], [0, 0], "expiry gives the bytes back");
});

Deno.test("expire forgets exactly the cids accepted before the window", () => {
  const guard = new ResendGuard();
  guard.accepted("old", message(1, "a", T0));
  guard.accepted("edge", message(2, "b", T0 + 1000));
  guard.accepted("new", message(3, "c", T0 + 5000));
  guard.expire(T0 + 1000 + RESEND_WINDOW_MS);
  assert.equal(guard.size, 2);
  assert.equal(guard.original("old", T0 + 1000), undefined);
  assert.equal(guard.original("edge", T0 + 1000)?.seq, 2);
  assert.equal(guard.original("new", T0 + 1000)?.seq, 3);
});
