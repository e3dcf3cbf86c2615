/**
 * The overload scenario (issue 12): one room offered about OVERLOAD_FACTOR × the capacity just
 * measured on the same target, with stalled and slow members beside the fast readers. It reports
 * what each kind of member got, whom the server evicted (a fast reader never should be), how many
 * `say`s it refused as busy, and its peak memory.
 */

import { DEFAULTS } from "../ops/config.ts";
import type { ClientSpec } from "./control.ts";
import { Laggard, type LaggardKind, SLOW_MEMBER_BYTES_PER_S } from "./laggards.ts";
import { fmtRate, type StepResult, type Target } from "./run.ts";
import type { SlowConsumerEvent } from "./server_events.ts";
import { seqFaults } from "./seq_check.ts";
import { capacityStepPasses, DEFAULT_TEXT_BYTES, loadBoundNote } from "./scenarios.ts";
import type { Figure, ScenarioOptions, ScenarioResult } from "./scenario_types.ts";

/** The offered rate is this many times the measured capacity. */
export const OVERLOAD_FACTOR = 2;
/**
 * Fast readers in the room (all in the load generators). Few, so that the server saturates before
 * the generators do: the server's cost is mostly per message (it sends one shared frame of many
 * lines to each member), the generators' per line per member (~0.6 µs each). With 100 members the
 * generators' core was 92-98% busy at 1.2-1.4M deliveries/s while the server's was ~50%, and an
 * old server fell so far behind there that a generator missed its 10 s reply deadline.
 */
export const OVERLOAD_CLIENTS = 20;
const QUICK_OVERLOAD_CLIENTS = OVERLOAD_CLIENTS;
/** Senders among the fast readers. */
export const OVERLOAD_SENDERS = 10;
/** Members that join and never read again, and members reading at ~100 KB/s. */
export const STALLED_MEMBERS = 2;
export const SLOW_MEMBERS = 2;
/**
 * Text size, in bytes: the capacity scenario's 64. Longer texts make the load generators the
 * bottleneck before the server (measured: scanning a 1 KiB line costs the generator ~1.4 µs, more
 * than the server spends delivering it), and a "fast" reader that cannot keep up is no longer
 * fast. A room at capacity still sends each member several MB/s, so a member that
 * stops reading outgrows loopback's few MB of kernel buffers within seconds.
 */
export const OVERLOAD_TEXT_BYTES = DEFAULT_TEXT_BYTES;
/** Rates the capacity probe climbs, in messages per second into the room. */
export const PROBE_RATES = [2000, 4000, 6000, 9000, 13000, 18000, 25000, 35000, 50000];
const QUICK_PROBE_RATES = [2000, 6000, 13000, 25000, 50000];
/**
 * A probe step that fails with the server at least this busy (share of its core) ends the climb.
 * One that fails with the server below it (other jobs on a shared machine, say) may be passed
 * over once (MAX_UNSATURATED_FAILS) before the climb ends anyway.
 */
export const SATURATED_SERVER_CPU = 0.85;
const MAX_UNSATURATED_FAILS = 1;
/**
 * Above this share of their core, or sending under this share of the offered rate, the load
 * generators, not the server, set the pace.
 */
const LOAD_BOUND_CPU = 0.9;
const LOAD_BOUND_SENT_SHARE = 0.95;
/** Seconds per probe step and for the overload itself (default and --quick). */
const PROBE_S = 2;
const QUICK_PROBE_S = 1.5;
const OVERLOAD_S = 10;
const QUICK_OVERLOAD_S = 8;
/** Longest wait for the backlog after the overload stops, in seconds. */
const OVERLOAD_DRAIN_S = 15;
/** How long each laggard may read its backlog afterwards (to find its close frame), in ms. */
const LAGGARD_DRAIN_MS = 5_000;

type Progress = (line: string) => void;

/** Evictions counted by member kind, and the server's logged reasons. */
export interface EvictionTally {
  stalled: number;
  slow: number;
  fast: number;
  /** `slow_consumer` lines by reason ("" for a server that logs none). */
  reasons: Record<string, number>;
}

/**
 * Counts evicted members per kind: a name the server logged as a slow consumer, or a laggard
 * that saw close code 4008; fast readers also by the 4008 closes their generators counted.
 */
export function tallyEvictions(
  events: readonly SlowConsumerEvent[],
  kindOf: (name: string) => LaggardKind | "fast" | undefined,
  laggards: readonly { name: string; kind: LaggardKind; closeCode: number | null | undefined }[],
  fast4008: number,
): EvictionTally {
  const evicted = new Map<string, LaggardKind | "fast">();
  const reasons: Record<string, number> = {};
  for (const e of events) {
    const kind = kindOf(e.name);
    if (kind === undefined) continue;
    evicted.set(e.name, kind);
    reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
  }
  for (const l of laggards) if (l.closeCode === 4008) evicted.set(l.name, l.kind);
  const count = (kind: string) => [...evicted.values()].filter((k) => k === kind).length;
  return {
    stalled: count("stalled"),
    slow: count("slow"),
    fast: Math.max(count("fast"), fast4008),
    reasons,
  };
}

/** Deliveries over what was owed: `members` × the messages the server accepted. */
export function deliveryOfAccepted(delivered: number, members: number, accepted: number): number {
  return members > 0 && accepted > 0 ? delivered / (members * accepted) : NaN;
}

/**
 * The offered rate: the one asked for, else OVERLOAD_FACTOR × capacity (the probe's first rate
 * when none passed).
 */
export function overloadRate(asked: number | undefined, capacity: number): number {
  if (asked !== undefined) return asked;
  return Math.round(OVERLOAD_FACTOR * (capacity > 0 ? capacity : PROBE_RATES[0] / 2));
}

/** Runs the overload scenario on `target`. */
export async function overload(
  target: Target,
  o: ScenarioOptions,
  progress: Progress,
): Promise<ScenarioResult> {
  const fastCount = o.clients ?? (o.quick ? QUICK_OVERLOAD_CLIENTS : OVERLOAD_CLIENTS);
  const textBytes = o.textBytes ?? OVERLOAD_TEXT_BYTES;
  const room = `over-${o.tag}`;
  const specs: ClientSpec[] = Array.from({ length: fastCount }, (_, i) => ({
    name: `b${o.tag}${i}`,
    room,
    roomSize: fastCount,
  }));
  progress(`connecting ${fastCount} fast readers`);
  const connected = await target.connect(specs);
  if (connected.failed > 0) {
    throw new Error(`Cannot set up overload: ${connected.failed} of ${fastCount} failed to join`);
  }
  const senders = specs.slice(0, Math.min(OVERLOAD_SENDERS, fastCount)).map((s) => s.name);
  const steps: StepResult[] = [];
  const notes: string[] = [];

  // Capacity first, on this target and in this shape, without the laggards.
  let capacity = 0;
  const asked = o.rates?.[0];
  if (asked === undefined) {
    let unsaturatedFails = 0;
    for (const rate of o.quick ? QUICK_PROBE_RATES : PROBE_RATES) {
      const step = await target.runStep({
        label: `probe: ${rate} msg/s in`,
        rate,
        senders,
        warmupS: 0.5,
        durationS: o.quick ? QUICK_PROBE_S : PROBE_S,
        drainS: 3,
        textBytes,
      }, progress);
      steps.push(step);
      notes.push(...loadBoundNote(step));
      if (capacityStepPasses(step)) {
        capacity = rate;
        continue;
      }
      if (step.serverCpu >= SATURATED_SERVER_CPU) break;
      notes.push(
        `${step.label}: failed with the server at ${(step.serverCpu * 100).toFixed(0)}% of its ` +
          "core, not saturated" +
          (unsaturatedFails < MAX_UNSATURATED_FAILS ? "; climbing on" : "; stopped climbing"),
      );
      if (++unsaturatedFails > MAX_UNSATURATED_FAILS) break;
    }
    if (capacity === PROBE_RATES.at(-1)) {
      notes.push(`every probe rate passed: ${capacity} msg/s is a lower bound on capacity`);
    }
  }
  const rate = overloadRate(asked, capacity);
  notes.push(
    asked === undefined
      ? `capacity probe: ${capacity} msg/s in passed (p99 ≤ 100 ms, no loss, every line once ` +
        `and in order); offered ${OVERLOAD_FACTOR}× that: ${rate} msg/s`
      : `offered rate given with --rate: ${rate} msg/s (no capacity probe)`,
  );

  progress("adding the stalled and slow members");
  const url = new URL(target.wsUrl);
  const laggards: Laggard[] = [];
  try {
    for (let i = 0; i < STALLED_MEMBERS; i++) {
      laggards.push(await Laggard.join("stalled", url, `st${o.tag}${i}`, room));
    }
    for (let i = 0; i < SLOW_MEMBERS; i++) {
      laggards.push(await Laggard.join("slow", url, `sl${o.tag}${i}`, room));
    }
    const rssBefore = target.serverRss();
    const eventsBefore = target.servers.reduce((n, s) => n + s.slowConsumers.length, 0);
    for (const l of laggards) l.begin();
    const loadStart = performance.now();
    const durationS = o.durationS ?? (o.quick ? QUICK_OVERLOAD_S : OVERLOAD_S);
    const step = await target.runStep({
      label: `overload: ${rate} msg/s in`,
      rate,
      senders,
      warmupS: 1,
      durationS,
      drainS: OVERLOAD_DRAIN_S,
      textBytes,
    }, progress);
    steps.push(step);
    notes.push(...loadBoundNote(step));
    progress("reading what the stalled and slow members were left");
    await Promise.all(laggards.map((l) => l.drain(LAGGARD_DRAIN_MS)));

    const events = target.servers.flatMap((s) => s.slowConsumers).slice(eventsBefore);
    const kinds = new Map<string, LaggardKind | "fast">(specs.map((s) => [s.name, "fast"]));
    for (const l of laggards) kinds.set(l.name, l.kind);
    const tally = tallyEvictions(events, (n) => kinds.get(n), laggards, step.closes["4008"] ?? 0);
    const accepted = step.sent - step.refused;
    const fastDelivery = deliveryOfAccepted(step.deliveredAll, fastCount, accepted);
    const ofKind = (kind: LaggardKind) => laggards.filter((l) => l.kind === kind);
    const laggardDelivery = (kind: LaggardKind) =>
      deliveryOfAccepted(
        ofKind(kind).reduce((n, l) => n + l.messages, 0),
        ofKind(kind).length,
        accepted,
      );
    const evictedAfter = (kind: LaggardKind) => {
      const names = new Set(ofKind(kind).map((l) => l.name));
      const times = events.filter((e) => names.has(e.name)).map((e) => e.at - loadStart);
      return times.length === names.size ? Math.max(...times) : NaN;
    };
    const faults = seqFaults(step);

    notes.push(
      `accepted ${accepted} of ${step.sent} says (${step.refused} refused as busy); fast readers ` +
        `got ${step.deliveredAll} deliveries of the ${fastCount} × ${accepted} owed`,
    );
    for (const l of laggards) {
      notes.push(
        `${l.kind} member ${l.name}: ${l.messages} messages, ` +
          `${(l.bytesRead / 2 ** 20).toFixed(2)} MiB read; ` +
          (l.closeCode === undefined
            ? "still connected at the end"
            : `closed with ${l.closeCode ?? "no close frame"}`),
      );
    }
    const reasons = Object.entries(tally.reasons).map(([r, n]) => `${n}× ${r || "(no reason)"}`);
    if (reasons.length) notes.push(`server logged slow_consumer: ${reasons.join(", ")}`);
    if (tally.fast > 0) {
      notes.push(
        `MISS: ${tally.fast} fast readers were evicted` +
          (step.loadCpu > LOAD_BOUND_CPU || step.sentPerS < LOAD_BOUND_SENT_SHARE * rate
            ? ` (the load generators used ${(step.loadCpu * 100).toFixed(0)}% of their core and ` +
              `sent ${fmtRate(step.sentPerS)} of ${fmtRate(rate)} msg/s: ` +
              "these readers read more slowly than the room talked, which is what the server " +
              "evicts; the bench, not the server, was the bottleneck)"
            : ""),
      );
    }
    if (faults.length) notes.push(`MISS: fast readers: ${faults.join(", ")}`);
    if (fastDelivery < 1 && tally.fast === 0 && faults.length === 0) {
      notes.push(
        "fast readers got less than everything accepted with no gap in their seqs: the rest " +
          `was still on its way when the drain (≤ ${OVERLOAD_DRAIN_S} s) ended`,
      );
    }
    const otherCloses = Object.entries(step.closes).filter(([c]) => c !== "4008");
    if (otherCloses.length) {
      notes.push(`fast readers closed otherwise: ${otherCloses.map(([c, n]) => `${n}× ${c}`)}`);
    }
    if (target.servers[0]?.kind === "server") {
      const bound = (fastCount + laggards.length) * DEFAULTS.sendQueueBytes +
        DEFAULTS.roomWindowBytes;
      notes.push(
        `the issue's memory bound above the base: clients × send budget + rooms × window = ` +
          `${fastCount + laggards.length} × ${DEFAULTS.sendQueueBytes} + ` +
          `${DEFAULTS.roomWindowBytes} B = ${(bound / 2 ** 20).toFixed(0)} MiB (server defaults)`,
      );
    }

    const f = (
      name: string,
      value: number,
      unit: Figure["unit"],
      better?: Figure["better"],
    ): Figure => ({ name, value, unit, better });
    const figures: Figure[] = [
      f("capacity measured first (msg/s in)", asked === undefined ? capacity : NaN, "msg/s"),
      f("offered (msg/s in)", rate, "msg/s"),
      f("sent/s in the window", step.sentPerS, "msg/s"),
      f("sender refusals (rate_limited)", step.refused, "count"),
      f("refused share of says", step.sent > 0 ? step.refused / step.sent : NaN, "share"),
      f("accepted says", accepted, "count", "higher"),
      f("delivered/s", step.deliveredPerS, "msg/s", "higher"),
      f("fast readers: delivery of accepted", fastDelivery, "ratio", "higher"),
      f(
        "fast readers: lines twice, late or missing",
        step.seqRepeated + step.seqSkipped,
        "count",
        "lower",
      ),
      f("fast readers: latency p50", step.latency.p50, "ms", "lower"),
      f("fast readers: latency p99", step.latency.p99, "ms", "lower"),
      f("slow members: delivery of accepted", laggardDelivery("slow"), "ratio"),
      f("stalled members: delivery of accepted", laggardDelivery("stalled"), "ratio"),
      f(`evicted: stalled members (of ${STALLED_MEMBERS})`, tally.stalled, "count", "higher"),
      f(`evicted: slow members (of ${SLOW_MEMBERS})`, tally.slow, "count"),
      f("evicted: fast readers (must be 0)", tally.fast, "count", "lower"),
      f("last stalled member evicted after (ms of load)", evictedAfter("stalled"), "ms", "lower"),
      f("server RSS before the load", rssBefore, "bytes"),
      f("server RSS peak in overload window", step.serverPeakRss, "bytes", "lower"),
      f("server peak RSS (VmHWM)", target.serverPeakRss(), "bytes", "lower"),
      f("server CPU (share of a core)", step.serverCpu, "share"),
    ];
    return {
      scenario: "overload",
      target: target.label,
      setup: `1 room of ${fastCount} fast readers (${senders.length} of them senders), ` +
        `${STALLED_MEMBERS} stalled members (never read) and ${SLOW_MEMBERS} slow ones ` +
        `(~${SLOW_MEMBER_BYTES_PER_S / 1000} KB/s); ${textBytes}-byte texts at ${
          fmtRate(rate)
        } msg/s in for ${durationS} s (${OVERLOAD_FACTOR}× the capacity probed first, ` +
        "without the laggards); delivery counts every say the server accepted",
      steps,
      figures,
      notes,
    };
  } finally {
    for (const l of laggards) l.close();
  }
}
