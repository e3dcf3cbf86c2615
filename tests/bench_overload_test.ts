/**
 * The overload scenario's pure parts (bench/overload.ts and the modules it reads from): how
 * evictions are told apart by member kind, what a delivery share is measured against, the offered
 * rate, the slow member's pace, the refusal count and the server's slow_consumer lines.
 */
import assert from "node:assert/strict";
import {
  deliveryOfAccepted,
  OVERLOAD_FACTOR,
  overloadRate,
  PROBE_RATES,
  tallyEvictions,
} from "../bench/overload.ts";
import { paceAllowance, SLOW_MEMBER_BYTES_PER_S } from "../bench/laggards.ts";
import { countRefusals } from "../bench/refusals.ts";
import { parseSlowConsumer } from "../bench/server_events.ts";
import { errorLine } from "../protocol/protocol.ts";

const kinds = new Map<string, "fast" | "stalled" | "slow">([
  ["f1", "fast"],
  ["f2", "fast"],
  ["st1", "stalled"],
  ["st2", "stalled"],
  ["sl1", "slow"],
]);
const kindOf = (n: string) => kinds.get(n);
const event = (name: string, reason: string) => ({ name, reason, at: 0 });

Deno.test("evictions are counted by the kind of member the server logged", () => {
  const tally = tallyEvictions(
    [event("st1", "stalled"), event("st2", "stalled"), event("sl1", "behind")],
    kindOf,
    [],
    0,
  );
  assert.deepEqual(tally, { stalled: 2, slow: 1, fast: 0, reasons: { stalled: 2, behind: 1 } });
});

Deno.test("a fast reader the server evicted counts as fast-but-evicted, by log or by 4008", () => {
  assert.equal(tallyEvictions([event("f1", "stalled")], kindOf, [], 0).fast, 1);
  assert.equal(tallyEvictions([], kindOf, [], 2).fast, 2);
  // The same client seen both ways counts once.
  assert.equal(tallyEvictions([event("f1", "behind")], kindOf, [], 1).fast, 1);
});

Deno.test("a laggard that saw 4008 counts as evicted though the server logs nothing", () => {
  const laggards = [
    { name: "st1", kind: "stalled" as const, closeCode: 4008 },
    { name: "st2", kind: "stalled" as const, closeCode: undefined },
    { name: "sl1", kind: "slow" as const, closeCode: 1006 },
  ];
  assert.deepEqual(tallyEvictions([], kindOf, laggards, 0), {
    stalled: 1,
    slow: 0,
    fast: 0,
    reasons: {},
  });
});

Deno.test("a member logged twice is one eviction, and names of other runs are ignored", () => {
  const tally = tallyEvictions(
    [event("st1", "stalled"), event("st1", "stalled"), event("someone-else", "behind")],
    kindOf,
    [{ name: "st1", kind: "stalled", closeCode: 4008 }],
    0,
  );
  assert.equal(tally.stalled, 1);
  assert.deepEqual(tally.reasons, { stalled: 2 });
});

Deno.test("delivery is measured against what the server accepted, once per member", () => {
  assert.equal(deliveryOfAccepted(300, 3, 100), 1);
  assert.equal(deliveryOfAccepted(299, 3, 100), 299 / 300);
  assert.ok(Number.isNaN(deliveryOfAccepted(0, 3, 0)));
  assert.ok(Number.isNaN(deliveryOfAccepted(5, 0, 10)));
});

Deno.test("the offered rate is the one asked for, else twice the probed capacity", () => {
  assert.equal(overloadRate(1234, 5000), 1234);
  assert.equal(overloadRate(undefined, 3000), OVERLOAD_FACTOR * 3000);
  // No probe step passed: twice half the first rate, that is, the first rate.
  assert.equal(overloadRate(undefined, 0), PROBE_RATES[0]);
});

Deno.test("a slow member may read its rate's worth of bytes per elapsed time", () => {
  assert.equal(paceAllowance(0, SLOW_MEMBER_BYTES_PER_S), 0);
  assert.equal(paceAllowance(1000, SLOW_MEMBER_BYTES_PER_S), SLOW_MEMBER_BYTES_PER_S);
  assert.equal(paceAllowance(50, 100_000), 5000);
  assert.equal(paceAllowance(-5, 100_000), 0);
});

Deno.test("countRefusals counts each rate_limited error line in a batched frame", () => {
  const refusal = errorLine("rate_limited", "Cannot say: the server is busy", "c1", 40);
  const other = errorLine("not_in_room", "Cannot say: not in room");
  const message = JSON.stringify({ type: "message", text: '"code":"rate_limited" quoted' });
  const frame = new TextEncoder().encode([refusal, message, other, refusal].join("\n"));
  assert.equal(countRefusals(frame, 0, frame.length), 2);
  // Only the given range counts.
  assert.equal(countRefusals(frame, refusal.length + 1, frame.length), 1);
  assert.equal(countRefusals(frame, 0, frame.length - refusal.length), 1);
  assert.equal(countRefusals(frame, 0, 0), 0);
});

Deno.test("slow_consumer lines are read from text and JSON logs, with or without a reason", () => {
  const text = "2026-12-03T14:00:00.000Z WARN  slow_consumer name=fast1 address=127.0.0.1 " +
    "reason=behind";
  assert.deepEqual(parseSlowConsumer(text, 7), { name: "fast1", reason: "behind", at: 7 });
  const quoted = '2026-12-03T14:00:00.000Z WARN  slow_consumer name="a b" address=127.0.0.1';
  assert.deepEqual(parseSlowConsumer(quoted, 1), { name: "a b", reason: "", at: 1 });
  const json = JSON.stringify({
    level: "warn",
    event: "slow_consumer",
    name: "x",
    reason: "stalled",
  });
  assert.deepEqual(parseSlowConsumer(json, 2), { name: "x", reason: "stalled", at: 2 });
  assert.equal(parseSlowConsumer("2026 INFO  joined name=slow_consumer_fan"), undefined);
  assert.equal(parseSlowConsumer('{"event":"joined","name":"slow_consumer"}'), undefined);
  assert.equal(parseSlowConsumer("Listening on http://127.0.0.1:1/"), undefined);
});
