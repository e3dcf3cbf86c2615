/**
 * The bench scenarios: what load each one puts on a target and which figures it reports.
 * Every scenario is bounded in clients, rate and time, and talks only to the target's address.
 */

import type { ClientSpec } from "./control.ts";
import { sleep, type StepResult, type Target } from "./run.ts";
import { deliveredPct } from "./report.ts";
import { joinAs } from "./session.ts";
import { RawWebSocket } from "./ws_client.ts";
import { seqFaults } from "./seq_check.ts";
import type { Figure, ScenarioOptions, ScenarioResult } from "./scenario_types.ts";

/** A capacity step passes when p99 is at most this, in ms (and nothing was lost). */
export const CAPACITY_P99_LIMIT_MS = 100;
/** Offered rates the capacity scenario climbs through, in messages per second into the room. */
export const CAPACITY_RATES = [50, 100, 200, 500, 1000, 1200, 1500, 2000];
const QUICK_CAPACITY_RATES = [100, 500, 1000, 2000];
/** Size of each sent text, in bytes (ASCII), stamp included. */
export const DEFAULT_TEXT_BYTES = 64;
/**
 * Text size in the slow scenario, in bytes. Loopback TCP buffers ~4 MB per stalled socket
 * (send-buffer autotuning on a 64 KB MSS) before the server's own queue sees a byte; at 1000
 * msg/s of 64-byte texts that takes ~30 s, with 1 KiB texts ~4 s.
 */
export const SLOW_TEXT_BYTES = 1024;
/** Members per room in the rooms and idle scenarios. */
export const ROOM_SIZE = 10;

/** Where a scenario writes its progress lines. */
export type Progress = (line: string) => void;

/** `count` clients named `b<tag><i>`, in rooms of `roomSize` named `<prefix>-<tag>-<n>`. */
function makeClients(count: number, roomSize: number, prefix: string, tag: string): ClientSpec[] {
  return Array.from({ length: count }, (_, i) => {
    const roomIndex = Math.floor(i / roomSize);
    const size = Math.min(roomSize, count - roomIndex * roomSize);
    return { name: `b${tag}${i}`, room: `${prefix}-${tag}-${roomIndex}`, roomSize: size };
  });
}

async function connectOrThrow(target: Target, specs: ClientSpec[], progress: Progress) {
  progress(`connecting ${specs.length} clients`);
  const r = await target.connect(specs);
  if (r.failed > 0) {
    throw new Error(
      `Cannot set up scenario: ${r.failed} of ${specs.length} clients failed to connect and join`,
    );
  }
  return r;
}

/**
 * The first `count` clients. Clients are dealt to the generators round-robin, so consecutive
 * ones spread the sending over every generator.
 */
function pickSenders(specs: ClientSpec[], count: number): string[] {
  return specs.slice(0, count).map((s) => s.name);
}

/**
 * A capacity step passes with p99 within the limit, no loss (every expected delivery counted),
 * every line once and in seq order at every client (bench/seq_check.ts: a line delivered twice or
 * out of order fails the step, as README promises "exactly once, in order"), and no disconnects.
 */
export function capacityStepPasses(step: StepResult): boolean {
  return step.latency.p99 <= CAPACITY_P99_LIMIT_MS && step.ratio >= 1 &&
    seqFaults(step).length === 0 && Object.keys(step.closes).length === 0;
}

function latencyFigures(step: StepResult, prefix = ""): Figure[] {
  const f = (name: string, value: number): Figure => ({
    name: `${prefix}${name}`,
    value,
    unit: "ms",
    better: "lower",
  });
  return [
    f("latency p50", step.latency.p50),
    f("latency p90", step.latency.p90),
    f("latency p99", step.latency.p99),
    f("latency p99.9", step.latency.p999),
    f("latency max", step.latency.max),
  ];
}

/** Per-instance server CPU (with several instances) and Redis CPU (with Redis), if any. */
function clusterCpuFigures(step: StepResult, prefix = ""): Figure[] {
  const figures: Figure[] = [];
  if (step.serverCpus.length > 1) {
    step.serverCpus.forEach((cpu, i) =>
      figures.push({
        name: `${prefix}server CPU, instance ${i + 1}`,
        value: cpu,
        unit: "share",
        better: "lower",
      })
    );
  }
  if (Number.isFinite(step.redisCpu)) {
    figures.push({
      name: `${prefix}Redis CPU (share of a core)`,
      value: step.redisCpu,
      unit: "share",
      better: "lower",
    });
  }
  return figures;
}

/** Repeated, late and missing seqs: each client must get each message once, in order. */
function seqFigures(step: StepResult): Figure[] {
  const f = (name: string, value: number): Figure => ({
    name,
    value,
    unit: "count",
    better: "lower",
  });
  return [
    f("lines delivered twice (same seq, same client)", step.seqRepeated),
    f("lines delivered out of order (late)", step.seqLate),
    f("seqs never delivered (skipped − late)", step.seqSkipped - step.seqLate),
  ];
}

/** Server plus Redis CPU: what the whole server side spent. */
function serverSideCpu(step: StepResult): number {
  return step.serverCpu + (Number.isFinite(step.redisCpu) ? step.redisCpu : 0);
}

function loadFigures(step: StepResult): Figure[] {
  return [
    { name: "delivered/s", value: step.deliveredPerS, unit: "msg/s", better: "higher" },
    { name: "delivery ratio", value: step.ratio, unit: "ratio", better: "higher" },
    ...latencyFigures(step),
    { name: "p99 send → server took it", value: step.toServer.p99, unit: "ms", better: "lower" },
    {
      name: "p99 server took it → received",
      value: step.fromServer.p99,
      unit: "ms",
      better: "lower",
    },
    { name: "server CPU (share of a core)", value: step.serverCpu, unit: "share", better: "lower" },
    ...clusterCpuFigures(step),
    {
      name: "server CPU per 1k deliveries (ms)",
      value: (step.serverCpu * 1000 * 1000) / step.deliveredPerS,
      unit: "ms",
      better: "lower",
    },
    ...(Number.isFinite(step.redisCpu)
      ? [{
        name: "server + Redis CPU per 1k deliveries (ms)",
        value: (serverSideCpu(step) * 1000 * 1000) / step.deliveredPerS,
        unit: "ms" as const,
        better: "lower" as const,
      }]
      : []),
    {
      name: "server RSS peak in window",
      value: step.serverPeakRss,
      unit: "bytes",
      better: "lower",
    },
    { name: "messages per frame", value: step.messagesPerFrame, unit: "count", better: "higher" },
    { name: "load generator CPU", value: step.loadCpu, unit: "share" },
    ...seqFigures(step),
  ];
}

function closeNotes(step: StepResult): string[] {
  const codes = Object.entries(step.closes).map(([code, n]) => `${n}× ${code}`).join(", ");
  const notes = codes ? [`${step.label}: the server closed clients (${codes})`] : [];
  if (step.seqRepeated > 0 || step.seqLate > 0 || step.seqSkipped > 0) {
    notes.push(
      `${step.label}: clients got ${step.seqRepeated} message lines a second time ` +
        `(${step.seqRepeatedOwn} of them their own message), ${step.seqLate} out of order ` +
        `(after a higher seq); ${step.seqSkipped} seqs were jumped over, ` +
        `${step.seqSkipped - step.seqLate} of them never arrived in the step`,
    );
  }
  return notes;
}

/** With several instances: how the clients and the senders were split over them. */
function splitNotes(target: Target, specs: ClientSpec[], senders: string[]): string[] {
  if (target.wsUrls.length < 2) return [];
  const clients = target.clientsPerServer(specs.map((s) => s.name));
  const sending = target.clientsPerServer(senders);
  return [
    `clients per instance: ${clients.join(" / ")}; senders per instance: ${sending.join(" / ")} ` +
    "(every client is in the one room, so each message reaches both instances' members)",
  ];
}

/** Core the server runs on, for interference notes (see bench/main.ts). */
const SERVER_CORE = 0;

/** Warnings when the generators were saturated or other processes shared the server's core. */
export function loadBoundNote(step: StepResult): string[] {
  const notes: string[] = [];
  if (step.loadCpu > 0.9) {
    notes.push(
      `${step.label}: load generators used ${(step.loadCpu * 100).toFixed(0)}% of their core; ` +
        "the figure may be load-bound",
    );
  }
  // The server's own CPU time already includes the loopback softirq work run in its context;
  // what else kept its core busy was other jobs, the hypervisor or kernel work charged to no one.
  // Redis, when there is one, runs on the same core (bench/run.ts) and is not "other".
  const core = step.cores[SERVER_CORE];
  const other = core ? core.busy - serverSideCpu(step) + core.steal : NaN;
  if (other > 0.15) {
    notes.push(
      `${step.label}: ~${(other * 100).toFixed(0)}% of the server's core ${SERVER_CORE} went to ` +
        "other processes, uncharged kernel work or hypervisor steal; latency may be disturbed",
    );
  }
  return notes;
}

/** The capacity scenario: one room, offered rates climbed until a step fails. */
export async function capacity(
  target: Target,
  o: ScenarioOptions,
  progress: Progress,
): Promise<ScenarioResult> {
  const clients = o.clients ?? (o.quick ? 100 : 1000);
  const rates = o.rates ?? (o.quick ? QUICK_CAPACITY_RATES : CAPACITY_RATES);
  const durationS = o.durationS ?? (o.quick ? 2 : 5);
  const specs = makeClients(clients, clients, "cap", o.tag);
  await connectOrThrow(target, specs, progress);
  const senders = pickSenders(specs, Math.min(20, clients));
  const steps: StepResult[] = [];
  const notes: string[] = splitNotes(target, specs, senders);
  for (const rate of rates) {
    const step = await target.runStep({
      label: `${rate} msg/s in`,
      rate,
      senders,
      warmupS: o.quick ? 0.5 : 1,
      durationS,
      drainS: 3,
      textBytes: o.textBytes ?? DEFAULT_TEXT_BYTES,
    }, progress);
    steps.push(step);
    notes.push(...closeNotes(step), ...loadBoundNote(step));
    if (!capacityStepPasses(step)) {
      const faults = seqFaults(step);
      notes.push(
        `${step.label}: failed (p99 ${step.latency.p99.toFixed(1)} ms, ` +
          `delivered ${deliveredPct(step.ratio)}${faults.map((f) => `, ${f}`).join("")}); ` +
          "stopped climbing",
      );
      break;
    }
  }
  const passed = steps.filter(capacityStepPasses);
  const best = passed.at(-1);
  if (best && best === steps.at(-1)) {
    notes.push(`every offered rate passed: ${best.offered} msg/s is a lower bound on capacity`);
  }
  const figures: Figure[] = [
    {
      name: "capacity: highest passing rate in",
      value: best?.offered ?? 0,
      unit: "msg/s",
      better: "higher",
    },
    {
      name: "capacity: deliveries/s at that rate",
      value: best?.deliveredPerS ?? 0,
      unit: "msg/s",
      better: "higher",
    },
    {
      name: "highest delivered/s in any step",
      value: Math.max(...steps.map((s) => s.deliveredPerS)),
      unit: "msg/s",
      better: "higher",
    },
  ];
  if (best) {
    figures.push(
      ...latencyFigures(best, "at capacity: "),
      {
        name: "at capacity: server CPU (share of a core)",
        value: best.serverCpu,
        unit: "share",
        better: "lower",
      },
      ...clusterCpuFigures(best, "at capacity: "),
    );
  }
  figures.push({
    name: "server peak RSS (VmHWM)",
    value: target.serverPeakRss(),
    unit: "bytes",
    better: "lower",
  });
  return {
    scenario: "capacity" as const,
    target: target.label,
    setup:
      `1 room of ${clients} clients, ${senders.length} senders, ${
        o.textBytes ?? DEFAULT_TEXT_BYTES
      }-byte texts, ` +
      `${durationS} s per rate; pass = p99 ≤ ${CAPACITY_P99_LIMIT_MS} ms, no loss, no disconnects, ` +
      "every line once and in seq order at every client",
    steps,
    figures,
    notes,
  };
}

/** The rooms scenario: many small rooms of ROOM_SIZE members under load. */
export async function rooms(
  target: Target,
  o: ScenarioOptions,
  progress: Progress,
): Promise<ScenarioResult> {
  const clients = o.clients ?? (o.quick ? 100 : 1000);
  const rate = o.rates?.[0] ?? (o.quick ? 1000 : 10_000);
  const durationS = o.durationS ?? (o.quick ? 3 : 8);
  const specs = makeClients(clients, ROOM_SIZE, "room", o.tag);
  await connectOrThrow(target, specs, progress);
  // One sender per room: member (r mod size) of room r, so senders spread over the generators.
  const senders = specs.filter((_, i) => i % ROOM_SIZE === Math.floor(i / ROOM_SIZE) % ROOM_SIZE)
    .map((s) => s.name);
  const step = await target.runStep({
    label: `${senders.length} rooms, ${rate} msg/s in`,
    rate,
    senders,
    warmupS: o.quick ? 0.5 : 1,
    durationS,
    drainS: 3,
    textBytes: o.textBytes ?? DEFAULT_TEXT_BYTES,
  }, progress);
  return {
    scenario: "rooms" as const,
    target: target.label,
    setup: `${senders.length} rooms of ${ROOM_SIZE} clients, one sender per room, ` +
      `${rate} msg/s in total for ${durationS} s`,
    steps: [step],
    figures: loadFigures(step),
    notes: [...closeNotes(step), ...loadBoundNote(step)],
  };
}

/** The latency scenario: one room at a light steady rate (100 msg/s by default). */
export async function latency(
  target: Target,
  o: ScenarioOptions,
  progress: Progress,
): Promise<ScenarioResult> {
  const clients = o.clients ?? (o.quick ? 100 : 1000);
  const rate = o.rates?.[0] ?? 100;
  const durationS = o.durationS ?? (o.quick ? 3 : 10);
  const specs = makeClients(clients, clients, "lat", o.tag);
  await connectOrThrow(target, specs, progress);
  const senders = pickSenders(specs, Math.min(10, clients));
  const step = await target.runStep({
    label: `${rate} msg/s in`,
    rate,
    senders,
    warmupS: o.quick ? 1 : 2,
    durationS,
    drainS: 3,
    textBytes: o.textBytes ?? DEFAULT_TEXT_BYTES,
  }, progress);
  return {
    scenario: "latency" as const,
    target: target.label,
    setup: `1 room of ${clients} clients, ${senders.length} senders, ${rate} msg/s in ` +
      `(${rate * clients} deliveries/s) for ${durationS} s`,
    steps: [step],
    figures: loadFigures(step),
    notes: [...splitNotes(target, specs, senders), ...closeNotes(step), ...loadBoundNote(step)],
  };
}

/** The idle scenario: connections in rooms of ROOM_SIZE that send nothing; memory per connection. */
export async function idle(
  target: Target,
  o: ScenarioOptions,
  progress: Progress,
): Promise<ScenarioResult> {
  const total = o.clients ?? (o.quick ? 1000 : 10_000);
  const half = Math.floor(total / 2);
  const specs = makeClients(total, ROOM_SIZE, "idle", o.tag);
  await sleep(1000);
  const base = target.serverRss();
  const first = await connectOrThrow(target, specs.slice(0, half), progress);
  await sleep(2000);
  const atHalf = target.serverRss();
  const second = await connectOrThrow(target, specs.slice(half), progress);
  progress(`${total} idle connections open; measuring for 3 s`);
  const meter = target.serverMeter();
  meter.start();
  await sleep(3000);
  const idleCpu = meter.stop();
  const atFull = target.serverRss();
  const connectMs = first.ms + second.ms;
  return {
    scenario: "idle" as const,
    target: target.label,
    setup: `${total} connections (hello + join, rooms of ${ROOM_SIZE}) opened in two halves, ` +
      `then idle for 3 s`,
    steps: [],
    figures: [
      { name: "server RSS before connections", value: base, unit: "bytes" },
      { name: `server RSS at ${half} connections`, value: atHalf, unit: "bytes", better: "lower" },
      {
        name: `RSS per connection at ${half}`,
        value: (atHalf - base) / half,
        unit: "bytes",
        better: "lower",
      },
      { name: `server RSS at ${total} connections`, value: atFull, unit: "bytes", better: "lower" },
      {
        name: `RSS per connection at ${total}`,
        value: (atFull - base) / total,
        unit: "bytes",
        better: "lower",
      },
      {
        name: "server peak RSS (VmHWM)",
        value: target.serverPeakRss(),
        unit: "bytes",
        better: "lower",
      },
      { name: "idle server CPU (share of a core)", value: idleCpu, unit: "share", better: "lower" },
      {
        name: "connections set up per second",
        value: total / (connectMs / 1000),
        unit: "msg/s",
        better: "higher",
      },
    ],
    notes: [],
  };
}

/** The slow scenario: a room at load with members that stop reading. */
export async function slow(
  target: Target,
  o: ScenarioOptions,
  progress: Progress,
): Promise<ScenarioResult> {
  // A smaller room at a high message rate of 1 KiB texts: the stalled client's backlog grows by
  // ~1.1 MB/s, so it outgrows loopback's ~4 MB of kernel buffers and the server's default 1 MiB
  // send queue within the window, while the naive server still keeps up with 100k deliveries/s.
  const clients = o.clients ?? 100;
  const rate = o.rates?.[0] ?? (o.quick ? 500 : 1000);
  const durationS = o.durationS ?? (o.quick ? 3 : 5);
  const specs = makeClients(clients, clients, "slow", o.tag);
  await connectOrThrow(target, specs, progress);
  const senders = pickSenders(specs, Math.min(10, clients));
  const textBytes = o.textBytes ?? SLOW_TEXT_BYTES;
  const common = { rate, senders, warmupS: o.quick ? 0.5 : 1, drainS: 3, textBytes };
  const before = await target.runStep(
    { ...common, label: "without slow client", durationS },
    progress,
  );

  // The slow consumer: a hand-made client that joins and then never reads again, so the
  // server's writes to it back up through both kernel buffers into the server's own queue.
  progress("adding the slow client");
  const stalled = await joinAs(
    RawWebSocket.connect,
    new URL(target.wsUrl),
    `s${o.tag}`,
    specs[0].room,
    () => {},
  );
  stalled.pause();
  let stalledClose: number | null | undefined;
  stalled.onClose = (code) => stalledClose = code;
  const rssBefore = target.serverRss();
  const during = await target.runStep(
    { ...common, label: "with slow client", durationS: durationS * 2 },
    progress,
  );
  const rssAfter = target.serverRss();

  // Read whatever the server queued for it, to learn whether (and how) it was cut off.
  progress("reading the slow client's backlog");
  stalled.onPayload = () => {};
  stalled.start();
  const deadline = performance.now() + 5_000;
  let lastBytes = -1;
  while (!stalled.closed && performance.now() < deadline && stalled.bytesRead !== lastBytes) {
    lastBytes = stalled.bytesRead;
    await sleep(500);
  }
  const outcome = stalled.closed
    ? `the server disconnected it (close code ${stalledClose ?? "none: connection dropped"}) ` +
      `after it had received ${(stalled.bytesRead / 2 ** 20).toFixed(2)} MiB`
    : `it was still connected; ${(stalled.bytesRead / 2 ** 20).toFixed(2)} MiB were waiting for it`;
  stalled.close();
  return {
    scenario: "slow" as const,
    target: target.label,
    setup: `1 room of ${clients} clients, ${rate} msg/s in of ${textBytes}-byte texts; then one ` +
      `member stops reading (raw TCP client) for ${durationS * 2} s`,
    steps: [before, during],
    figures: [
      ...latencyFigures(before, "without slow client: ").slice(2, 4),
      ...latencyFigures(during, "with slow client: ").slice(2, 4),
      {
        name: "p99 with ÷ without slow client",
        value: during.latency.p99 / before.latency.p99,
        unit: "ratio",
        better: "lower",
      },
      {
        name: "with slow client: delivery ratio",
        value: during.ratio,
        unit: "ratio",
        better: "higher",
      },
      {
        name: "server RSS growth while slow client stalled",
        value: rssAfter - rssBefore,
        unit: "bytes",
        better: "lower",
      },
      {
        name: "server peak RSS (VmHWM)",
        value: target.serverPeakRss(),
        unit: "bytes",
        better: "lower",
      },
    ],
    notes: [
      `slow client: ${outcome}`,
      ...closeNotes(before),
      ...loadBoundNote(before),
      ...closeNotes(during),
      ...loadBoundNote(during),
    ],
  };
}

/**
 * One result from several runs of a scenario on one target: each figure is the median over the
 * runs, every run's steps are kept (labelled #1, #2, …), and notes say which run they came from.
 */
export function combineRepeats(runs: ScenarioResult[]): ScenarioResult {
  if (runs.length <= 1) return runs[0];
  const names = [...new Set(runs.flatMap((r) => r.figures.map((f) => f.name)))];
  const figures = names.map((name) => {
    const all = runs.map((r) => r.figures.find((f) => f.name === name)).filter((f) =>
      f !== undefined
    );
    const values = all.map((f) => f.value).filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
    const mid = values.length >> 1;
    const value = values.length === 0
      ? NaN
      : values.length % 2
      ? values[mid]
      : (values[mid - 1] + values[mid]) / 2;
    return { ...all[0], value };
  });
  return {
    ...runs[0],
    setup: `${runs[0].setup}; figures are medians of ${runs.length} runs`,
    steps: runs.flatMap((r, i) => r.steps.map((s) => ({ ...s, label: `${s.label} #${i + 1}` }))),
    figures,
    notes: runs.flatMap((r, i) => r.notes.map((n) => `#${i + 1}: ${n}`)),
  };
}
