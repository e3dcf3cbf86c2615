/**
 * The large-room bench scenarios (bench/large_room.ts, issue 16): the exactly-once check and the
 * CPU-per-join arithmetic as pure functions, then each scenario run by `deno task bench` at a
 * small size against a real server, for the shape of its report and a clean exactly-once verdict.
 */
import assert from "node:assert/strict";
import {
  addVerdict,
  checkSeqs,
  emptyTally,
  mergeTallies,
  SeqLedger,
} from "../bench/exactly_once.ts";
import { cpuAt, FIRST_JOINS, joinCost, quantileOf } from "../bench/large_room.ts";
import type { ScenarioResult } from "../bench/scenario_types.ts";

Deno.test("the exactly-once check passes every seq after since, once, in order", () => {
  assert.deepEqual(checkSeqs([6, 7, 8, 9, 10], 5, 10), {
    missing: 0,
    duplicated: 0,
    outside: 0,
    firstMissing: NaN,
    firstDuplicate: NaN,
  });
  assert.equal(checkSeqs([], 10, 10).missing, 0, "nothing missed, nothing owed");
});

Deno.test("the exactly-once check fails a duplicated seq", () => {
  const v = checkSeqs([6, 7, 7, 8], 5, 8);
  assert.equal(v.duplicated, 1);
  assert.equal(v.firstDuplicate, 7);
  assert.equal(v.missing, 0);
});

Deno.test("the exactly-once check fails a missing seq, in the middle or at the end", () => {
  const gap = checkSeqs([6, 8, 9], 5, 9);
  assert.equal(gap.missing, 1);
  assert.equal(gap.firstMissing, 7);
  const tail = checkSeqs([6, 7], 5, 9);
  assert.equal(tail.missing, 2, "8 and 9 never came");
  assert.equal(tail.firstMissing, 8);
});

Deno.test("the exactly-once check fails a seq it already had before since, or past the last", () => {
  assert.equal(checkSeqs([5, 6], 5, 6).outside, 1, "since 5 means 5 was had: a resend of it");
  assert.equal(checkSeqs([6, 7], 5, 6).outside, 1, "7 is past the room's last seq");
});

Deno.test("a ledger fed out of order reports a fault, never a pass", () => {
  const ledger = new SeqLedger(0);
  for (const seq of [1, 3, 2]) ledger.see(seq);
  const v = ledger.verdict(3);
  assert.ok(v.missing + v.duplicated > 0, JSON.stringify(v));
});

Deno.test("tallies count exact clients and name the first faulty ones", () => {
  const a = emptyTally();
  addVerdict(a, "ok", checkSeqs([1, 2], 0, 2));
  addVerdict(a, "twice", checkSeqs([1, 1, 2], 0, 2));
  const b = emptyTally();
  addVerdict(b, "gap", checkSeqs([2], 0, 2));
  const total = mergeTallies([a, b]);
  assert.equal(total.clients, 3);
  assert.equal(total.exact, 1);
  assert.equal(total.duplicated, 1);
  assert.equal(total.missing, 1);
  assert.deepEqual(total.examples, [
    "twice: 1 doubled (first 1)",
    "gap: 1 missing (first 1)",
  ]);
});

Deno.test("CPU at a time is interpolated between samples", () => {
  const samples = [{ at: 0, cpu: 0 }, { at: 100, cpu: 1 }, { at: 200, cpu: 1 }];
  assert.equal(cpuAt(samples, 50), 0.5);
  assert.equal(cpuAt(samples, 150), 1);
  assert.equal(cpuAt(samples, -5), 0);
  assert.equal(cpuAt(samples, 500), 1);
});

Deno.test("CPU per join compares the first joins with the last decile", () => {
  // 1000 joins, one per ms; the CPU clock runs at 1 ms per ms for the first half, 4 after.
  const joinedAt = Array.from({ length: 1000 }, (_, i) => i + 1);
  const samples = Array.from({ length: 1001 }, (_, t) => ({
    at: t,
    cpu: (t <= 500 ? t : 500 + 4 * (t - 500)) / 1000,
  }));
  const cost = joinCost(samples, joinedAt.reverse(), 0);
  const near = (a: number, b: number) => Math.abs(a - b) < 1e-9;
  assert.ok(near(cost.firstMs, 1), `first ${cost.firstMs}`);
  assert.ok(near(cost.lastDecileMs, 4), `last decile ${cost.lastDecileMs}`);
  assert.ok(near(cost.ratio, 4), `ratio ${cost.ratio}`);
  assert.ok(Number.isNaN(joinCost(samples, [1, 2, 3], 0).firstMs), `fewer than ${FIRST_JOINS}`);
});

Deno.test("quantiles of join times are nearest-rank", () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(quantileOf(values, 0.5), 50);
  assert.equal(quantileOf(values, 0.99), 99);
  assert.ok(Number.isNaN(quantileOf([], 0.5)));
});

/** Members in each small run: enough for a room of hundreds, small enough for CI. */
const SMALL_ROOM = 200;
/** The whole bench run of one scenario may take this long, in ms. */
const RUN_LIMIT_MS = 120_000;

/** Runs `deno task bench` for `scenario` at SMALL_ROOM with `extra` flags; its JSON result. */
async function bench(scenario: string, extra: string[]): Promise<ScenarioResult> {
  const json = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../bench/main.ts", import.meta.url).pathname,
        "--scenario",
        scenario,
        "--mode",
        "server",
        "--clients",
        String(SMALL_ROOM),
        "--quiet-wait",
        "0",
        "--json",
        json,
        ...extra,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(RUN_LIMIT_MS),
    }).output();
    const text = new TextDecoder();
    assert.equal(
      out.code,
      0,
      `${text.decode(out.stdout)}\n${text.decode(out.stderr).slice(-3000)}`,
    );
    const { results }: { results: ScenarioResult[] } = JSON.parse(await Deno.readTextFile(json));
    assert.equal(results.length, 1, "one result: the real server only");
    assert.equal(results[0].scenario, scenario);
    assert.equal(results[0].target, "server");
    return results[0];
  } finally {
    await Deno.remove(json);
  }
}

/** The value of figure `name`, which must be there. */
function value(r: ScenarioResult, name: string): number {
  const f = r.figures.find((x) => x.name === name);
  assert.ok(f, `${r.scenario} reports "${name}" (has: ${r.figures.map((x) => x.name).join(", ")})`);
  return f.value;
}

const finitePositive = (v: number, what: string) =>
  assert.ok(Number.isFinite(v) && v > 0, `${what}: ${v}`);

Deno.test("bench join-storm: every client in, time from the last connect, CPU per join first vs last", async () => {
  const r = await bench("join-storm", ["--open-rate", "400", "--duration", "60"]);
  assert.equal(value(r, "joined"), SMALL_ROOM);
  const wait = value(r, "last connect → all in");
  assert.ok(Number.isFinite(wait) && wait >= 0, `last connect → all in: ${wait}`);
  assert.ok(value(r, "first connect → all in") >= wait);
  assert.ok(value(r, "join p50 (connect → joined)") <= value(r, "join p99 (connect → joined)"));
  finitePositive(value(r, `server CPU per join, first ${FIRST_JOINS}`), "first CPU per join");
  finitePositive(value(r, "server CPU per join, last decile"), "last decile CPU per join");
  const ratio = value(r, "CPU per join, last decile ÷ first");
  assert.ok(
    Math.abs(
      ratio - value(r, "server CPU per join, last decile") /
          value(r, `server CPU per join, first ${FIRST_JOINS}`),
    ) < 1e-9,
  );
});

Deno.test("bench reconnect-storm: after a restart every member is back with each missed seq once", async () => {
  const r = await bench("reconnect-storm", ["--duration", "60"]);
  assert.equal(value(r, "members back"), SMALL_ROOM);
  assert.equal(value(r, "clients with every seq exactly once"), SMALL_ROOM + 1, "and the writer");
  assert.equal(value(r, "seqs missing"), 0);
  assert.equal(value(r, "seqs doubled"), 0);
  const p50 = value(r, "reconnect → joined p50");
  const p99 = value(r, "reconnect → joined p99");
  assert.ok(Number.isFinite(p50) && p50 <= p99, `p50 ${p50}, p99 ${p99}`);
  assert.ok(value(r, "storm start → all back") >= p99 * 0.5);
  assert.match(r.notes.join("\n"), /exactly-once over seqs up to 20: 201 of 201 clients back/);
});

Deno.test("bench churn: p99 without and with churn in one run, and every seq once across rejoins", async () => {
  const r = await bench("churn", ["--duration", "3", "--churn", "600"]);
  const calm = value(r, "p99 without churn");
  const churned = value(r, "p99 with churn");
  finitePositive(calm, "p99 without churn");
  finitePositive(churned, "p99 with churn");
  assert.ok(Math.abs(value(r, "p99 with ÷ without churn") - churned / calm) < 1e-9);
  assert.ok(value(r, "leaves and rejoins") > 0, "members did churn");
  assert.equal(value(r, "clients with every seq exactly once"), SMALL_ROOM);
  assert.equal(value(r, "seqs missing"), 0);
  assert.equal(value(r, "seqs doubled"), 0);
});

Deno.test("bench idle-room: every connection in one room, RSS per connection", async () => {
  const r = await bench("idle-room", []);
  assert.equal(value(r, "in the room"), SMALL_ROOM);
  finitePositive(value(r, "server RSS per connection"), "RSS per connection");
  const grew = value(r, "server RSS after") - value(r, "server RSS before");
  assert.ok(Math.abs(value(r, "server RSS per connection") - grew / SMALL_ROOM) < 1e-6);
});
