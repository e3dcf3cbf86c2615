/**
 * The bench's "exactly once, in order" check (bench/seq_check.ts) and the capacity step's verdict
 * built on it: a step that delivered a line twice or out of order fails, as README promises.
 */
import assert from "node:assert/strict";
import { SeqCheck, seqFaults } from "../bench/seq_check.ts";
import { CAPACITY_P99_LIMIT_MS, capacityStepPasses } from "../bench/scenarios.ts";
import type { StepResult } from "../bench/run.ts";

const enc = new TextEncoder();

/** A line from `from` and the index of its text, as the load generator hands them to `see`. */
function line(from: string): { bytes: Uint8Array; at: number } {
  const head = `{"type":"message","room":"r","seq":1,"from":${JSON.stringify(from)},"text":"`;
  return { bytes: enc.encode(head + '~T1~"}'), at: enc.encode(head).length };
}

function verdicts(name: string, seqs: number[], from = "other"): string[] {
  const check = new SeqCheck(name);
  const { bytes, at } = line(from);
  return seqs.map((s) => check.see(s, bytes, at));
}

Deno.test("SeqCheck calls each seq one above the last next", () => {
  assert.deepEqual(verdicts("me", [7, 8, 9]), ["next", "next", "next"]);
});

Deno.test("SeqCheck counts the seqs a client jumped over, and one arriving later is late", () => {
  const check = new SeqCheck("me");
  const { bytes, at } = line("other");
  assert.deepEqual([1, 4, 2, 3].map((s) => check.see(s, bytes, at)), [
    "next",
    "skipped",
    "late",
    "late",
  ]);
  assert.equal(check.skipped, 2);
});

Deno.test("SeqCheck tells a repeated line from a repeat of the client's own message", () => {
  assert.deepEqual(verdicts("me", [1, 2, 2], "other"), ["next", "next", "repeat"]);
  assert.deepEqual(verdicts("me", [1, 2, 2], "me"), ["next", "next", "repeat-own"]);
});

Deno.test("seqFaults is empty only when every line came once and in order", () => {
  assert.deepEqual(seqFaults({ seqRepeated: 0, seqLate: 0, seqSkipped: 0 }), []);
  assert.equal(seqFaults({ seqRepeated: 1, seqLate: 0, seqSkipped: 0 }).length, 1);
  assert.equal(seqFaults({ seqRepeated: 0, seqLate: 1, seqSkipped: 1 }).length, 1);
  assert.equal(seqFaults({ seqRepeated: 0, seqLate: 0, seqSkipped: 3 }).length, 1);
  assert.match(seqFaults({ seqRepeated: 2, seqLate: 3, seqSkipped: 5 }).join("; "), /2.*twice/);
});

/** A capacity step that passes on every count, with `over` replacing some of them. */
function step(over: Partial<StepResult> = {}): StepResult {
  const latency = { count: 1000, p50: 1, p90: 2, p99: 3, p999: 4, max: 5 };
  return {
    label: "1000 msg/s in",
    offered: 1000,
    sentPerS: 1000,
    sent: 1500,
    refused: 0,
    deliveredAll: 1500,
    expected: 1000,
    delivered: 1000,
    ratio: 1,
    deliveredPerS: 1000,
    latency,
    toServer: latency,
    fromServer: latency,
    serverCpu: 0.5,
    serverCpus: [0.5],
    redisCpu: NaN,
    serverPeakRss: 1,
    loadCpu: 0.5,
    cores: [],
    messagesPerFrame: 1,
    readsPerS: 1,
    closes: {},
    seqRepeated: 0,
    seqRepeatedOwn: 0,
    seqLate: 0,
    seqSkipped: 0,
    ...over,
  };
}

Deno.test("a capacity step with every line once, in order and in time passes", () => {
  assert.equal(capacityStepPasses(step()), true);
});

Deno.test("a capacity step fails when a client got a line twice", () => {
  assert.equal(capacityStepPasses(step({ seqRepeated: 1 })), false);
  assert.equal(capacityStepPasses(step({ seqRepeated: 1, seqRepeatedOwn: 1 })), false);
});

Deno.test("a capacity step fails when a line arrived out of order, even if it arrived", () => {
  assert.equal(capacityStepPasses(step({ seqLate: 1, seqSkipped: 1 })), false);
});

Deno.test("a capacity step still fails on loss, lateness past the limit and disconnects", () => {
  assert.equal(capacityStepPasses(step({ seqSkipped: 1 })), false);
  assert.equal(capacityStepPasses(step({ ratio: 0.999 })), false);
  assert.equal(
    capacityStepPasses(step({ latency: { ...step().latency, p99: CAPACITY_P99_LIMIT_MS + 1 } })),
    false,
  );
  assert.equal(capacityStepPasses(step({ closes: { "4008": 1 } })), false);
});
