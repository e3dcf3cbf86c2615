/**
 * The large-room scenarios of issue 16, each on one room with thousands of members: a join storm,
 * a reconnect storm after a restart, steady chat with churn, and idle members' memory.
 *
 * Design: the members live in crowd processes (bench/crowd.ts, pinned with the load generators,
 * never in the server's process), driven over request/reply lines; this module paces them, samples
 * the server's CPU from /proc while they work, and turns what they saw into figures. The crowds
 * never rely on `joined`'s member list (a server may bound it and send `count`), only on its
 * `seq` and `history`. Every wait is bounded: a storm that does not finish within its bound is
 * reported as such (how many got in by then), not waited out.
 */

import {
  type CrowdReply,
  type CrowdRequest,
  type CrowdStats,
  emptyCrowdStats,
} from "./crowd_protocol.ts";
import { mergeTallies, type SeqTally } from "./exactly_once.ts";
import { wallNow } from "./frames.ts";
import { Histogram } from "./histogram.ts";
import { cpuSeconds, ProcessMeter } from "./proc.ts";
import { LineChild } from "./processes.ts";
import { sleep, type Target } from "./run.ts";
import type {
  Figure,
  LargeRoomScenario,
  ScenarioOptions,
  ScenarioResult,
} from "./scenario_types.ts";

/** Clients in the join storm and the idle room, by default. */
export const STORM_CLIENTS = 10_000;
/** Members of the room the reconnect storm restarts, by default. */
export const RECONNECT_MEMBERS = 5000;
/**
 * Members of the churn room, by default: fewer than the reconnect room, because at 100 msg/s each
 * member reads up to 100 frames a second, and the load core reads ~100k frames/s before it, not
 * the server, sets the pace (5000 members would be 500k deliveries a second).
 */
export const CHURN_MEMBERS = 1000;
/** Clients opened per second, by default (the storm). */
export const DEFAULT_OPEN_RATE = 2000;
/** Messages per second into the churn room, by default. */
export const CHURN_MESSAGE_RATE = 100;
/** Share of the churn room's members that leave and rejoin per minute, by default. */
export const DEFAULT_CHURN_PER_MIN = 0.1;
/** How long a churning member stays out after its `left`, in ms. */
export const CHURN_AWAY_MS = 1000;
/** Senders in the churn room (they never churn). */
export const CHURN_SENDERS = 10;
/** Texts said before the restart, between it and the storm, and during the storm. */
export const MESSAGES_BEFORE_RESTART = 5;
export const MESSAGES_WHILE_DOWN = 5;
export const MESSAGES_DURING_STORM = 10;
/** Spacing of those texts, in ms. */
const SAY_INTERVAL_MS = 50;
/** Text size in these scenarios, in bytes (stamp included). */
const TEXT_BYTES = 64;
/** Longest wait for a room to fill before a scenario's measurement starts, in seconds. */
export const SETUP_LIMIT_S = 600;
/** Longest wait for the join storm (after its last connect) and the reconnect storm, in seconds. */
export const STORM_LIMIT_S = 60;
/** The first joins whose server CPU is compared with the last decile's. */
export const FIRST_JOINS = 100;
/** How often the server's CPU time is sampled during a storm, in ms. */
const CPU_SAMPLE_MS = 20;
/** How often the crowds are polled while a room fills, in ms. */
const POLL_MS = 250;
/** Wait after the last send for late deliveries, in ms. */
const DRAIN_MS = 2000;
/** Crowd processes exit by themselves after this long, in seconds. */
const CROWD_LIFETIME_S = 30 * 60;

type Progress = (line: string) => void;

/** CPU seconds of every thread of `pid`, from schedstat (ns) or, without it, stat (10 ms ticks). */
export function serverCpuSeconds(pid: number): number {
  try {
    let ns = 0;
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0]);
    }
    if (Number.isFinite(ns)) return ns / 1e9;
  } catch { /* no schedstat: fall back to stat */ }
  return cpuSeconds(pid);
}

/** One sample of a process's CPU time: wall ms, CPU seconds. */
export interface CpuSample {
  at: number;
  cpu: number;
}

/** CPU seconds at wall time `at`, interpolated between the samples around it (sorted by time). */
export function cpuAt(samples: readonly CpuSample[], at: number): number {
  if (samples.length === 0) return NaN;
  if (at <= samples[0].at) return samples[0].cpu;
  for (let i = 1; i < samples.length; i++) {
    const b = samples[i];
    if (b.at < at) continue;
    const a = samples[i - 1];
    return b.at === a.at ? b.cpu : a.cpu + ((b.cpu - a.cpu) * (at - a.at)) / (b.at - a.at);
  }
  return samples[samples.length - 1].cpu;
}

/** Server CPU per join, in ms: over the first FIRST_JOINS and over the last tenth of the joins. */
export interface JoinCost {
  firstMs: number;
  lastDecileMs: number;
  /** lastDecileMs ÷ firstMs: 1 when a join costs the same in a full room as in an empty one. */
  ratio: number;
}

/**
 * The server CPU per join from CPU samples and the times joins were answered (wall ms, any
 * order), counting from `startAt` (the first connect). NaN where there are too few joins.
 */
export function joinCost(
  samples: readonly CpuSample[],
  joinedAt: readonly number[],
  startAt: number,
): JoinCost {
  const times = [...joinedAt].sort((a, b) => a - b);
  const k = times.length;
  const firstMs = k >= FIRST_JOINS
    ? ((cpuAt(samples, times[FIRST_JOINS - 1]) - cpuAt(samples, startAt)) * 1000) / FIRST_JOINS
    : NaN;
  const from = Math.floor(k * 0.9);
  const lastDecileMs = k >= 2 * FIRST_JOINS && from > 0
    ? ((cpuAt(samples, times[k - 1]) - cpuAt(samples, times[from - 1])) * 1000) / (k - from)
    : NaN;
  return { firstMs, lastDecileMs, ratio: lastDecileMs / firstMs };
}

/** The value at quantile `q` of `values` (nearest rank), NaN when empty. */
export function quantileOf(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Samples a process's CPU time every CPU_SAMPLE_MS until stopped. */
class CpuSampler {
  readonly samples: CpuSample[] = [];
  #timer: ReturnType<typeof setInterval>;
  constructor(pid: number) {
    const take = () => this.samples.push({ at: wallNow(), cpu: serverCpuSeconds(pid) });
    take();
    this.#timer = setInterval(take, CPU_SAMPLE_MS);
  }
  stop(): CpuSample[] {
    clearInterval(this.#timer);
    return this.samples;
  }
}

type CrowdOk = CrowdReply;

/** The crowd processes of one scenario, each holding a share of the members. */
class Crowds {
  #children: LineChild<CrowdRequest, CrowdOk>[];
  #owner = new Map<string, number>();

  private constructor(children: LineChild<CrowdRequest, CrowdOk>[]) {
    this.#children = children;
  }

  /** Starts `count` crowd processes where the target's load generators run. */
  static async start(target: Target): Promise<Crowds> {
    const { loadCore, workers, io } = target.place;
    const children = Array.from(
      { length: Math.max(1, workers) },
      () =>
        new LineChild<CrowdRequest, CrowdOk>("crowd.ts", [String(CROWD_LIFETIME_S), io], loadCore),
    );
    const crowds = new Crowds(children);
    try {
      await Promise.all(children.map((c) => c.request({ cmd: "stats" }, 30_000)));
    } catch (e) {
      await crowds.stop();
      throw e;
    }
    return crowds;
  }

  /** Opens `names` (dealt round-robin over the processes, sticking to their first one). */
  async open(
    url: string,
    room: string,
    names: string[],
    perS: number,
    flags: { since: boolean; track: boolean },
  ): Promise<void> {
    const shares = this.#children.map(() => [] as string[]);
    for (const name of names) {
      let i = this.#owner.get(name);
      if (i === undefined) this.#owner.set(name, i = this.#owner.size % this.#children.length);
      shares[i].push(name);
    }
    const perChild = perS / this.#children.length;
    await Promise.all(this.#children.map((c, i) =>
      shares[i].length === 0 ? undefined : c.request({
        cmd: "open",
        url,
        room,
        names: shares[i],
        perS: perChild,
        ...flags,
      }, (shares[i].length / perChild) * 1000 + 60_000)
    ));
  }

  /** Counts summed over the processes (the latest connect and seq: the highest). */
  async stats(): Promise<CrowdStats> {
    const all = await this.#all({ cmd: "stats" });
    const total = emptyCrowdStats();
    for (const { stats: s } of all) {
      total.opened += s.opened;
      total.joined += s.joined;
      total.failed += s.failed;
      total.left += s.left;
      total.rejoined += s.rejoined;
      total.errors += s.errors;
      for (const [code, n] of Object.entries(s.closes)) {
        total.closes[code] = (total.closes[code] ?? 0) + n;
      }
      if (!(s.lastConnectAt <= total.lastConnectAt)) total.lastConnectAt = s.lastConnectAt;
      if (!(s.lastSeq <= total.lastSeq)) total.lastSeq = s.lastSeq;
    }
    return total;
  }

  /** Join times of the latest open, over every process. */
  async joins(): Promise<{ joinedAt: number[]; joinMs: number[] }> {
    const all = await this.#all({ cmd: "joins" }, 60_000);
    return {
      joinedAt: all.flatMap((r) => r.joinedAt ?? []),
      joinMs: all.flatMap((r) => r.joinMs ?? []),
    };
  }

  /** The latency samples since the last call, merged. */
  async latency(): Promise<Histogram> {
    const h = new Histogram();
    for (const r of await this.#all({ cmd: "latency" }, 60_000)) {
      if (r.histogram) h.merge(r.histogram);
    }
    return h;
  }

  /** Every tracked client's exactly-once verdict against `through`, summed. */
  async verify(through: number): Promise<SeqTally> {
    const all = await this.#all({ cmd: "verify", through }, 60_000);
    return mergeTallies(all.map((r) => r.tally!));
  }

  /** `name` says `count` texts; resolves when the last is sent. */
  async say(name: string, count: number): Promise<void> {
    const i = this.#owner.get(name);
    if (i === undefined) throw new Error(`Cannot say: no crowd holds ${name}`);
    await this.#children[i].request(
      { cmd: "say", name, count, intervalMs: SAY_INTERVAL_MS, textBytes: TEXT_BYTES },
      count * SAY_INTERVAL_MS + 30_000,
    );
  }

  /** Steady sending from `senders` (each in the process that holds it). */
  async send(
    senders: string[],
    rate: number,
    window: { startAt: number; measureFrom: number; stopAt: number },
  ) {
    await Promise.all(this.#children.map((c, i) => {
      const mine = senders.filter((n) => this.#owner.get(n) === i);
      return c.request({
        cmd: "send",
        senders: mine,
        rate: (rate * mine.length) / senders.length,
        ...window,
        textBytes: TEXT_BYTES,
      });
    }));
  }

  /** Churn among `names` at `perS` leaves a second in all, until `stopAt`. */
  async churn(names: string[], perS: number, stopAt: number): Promise<void> {
    await Promise.all(this.#children.map((c, i) => {
      const mine = names.filter((n) => this.#owner.get(n) === i);
      return c.request({
        cmd: "churn",
        names: mine,
        perS: (perS * mine.length) / Math.max(1, names.length),
        awayMs: CHURN_AWAY_MS,
        stopAt,
      });
    }));
  }

  /** Polls until `done(stats)` or `until` (wall ms); returns the last stats. */
  async waitFor(
    done: (s: CrowdStats) => boolean,
    until: number,
    progress: Progress,
    what: string,
  ): Promise<CrowdStats> {
    while (true) {
      const s = await this.stats();
      if (done(s) || wallNow() >= until) return s;
      progress(`${what}: ${s.joined} in, ${s.failed} failed`);
      await sleep(POLL_MS);
    }
  }

  async #all(req: CrowdRequest, timeoutMs = 30_000): Promise<CrowdOk[]> {
    return await Promise.all(this.#children.map((c) => c.request(req, timeoutMs)));
  }

  /** Closes every client and stops the processes; safe to call twice. */
  async stop(): Promise<void> {
    await Promise.all(this.#children.map((c) => c.stop({ cmd: "exit" })));
  }
}

const figure = (
  name: string,
  value: number,
  unit: Figure["unit"],
  better?: Figure["better"],
): Figure => ({ name, value, unit, better });

/** Names and room of one scenario run: `<prefix><tag><i>`, room `<prefix>-<tag>`. */
function crowdOf(prefix: string, tag: string, count: number) {
  return {
    room: `${prefix}-${tag}`,
    names: Array.from({ length: count }, (_, i) => `${prefix}${tag}${i}`),
  };
}

function closesNote(s: CrowdStats): string[] {
  const closes = Object.entries(s.closes).map(([c, n]) => `${n}×${c}`).join(" ");
  const parts = [
    s.failed ? `${s.failed} connections failed` : "",
    closes ? `closed by the server: ${closes}` : "",
    s.errors ? `${s.errors} error lines` : "",
  ].filter(Boolean);
  return parts.length ? [parts.join("; ")] : [];
}

/** Fills `room` with `names` at `perS`, waiting at most SETUP_LIMIT_S; throws if not all get in. */
async function fill(
  crowds: Crowds,
  target: Target,
  room: string,
  names: string[],
  perS: number,
  track: boolean,
  progress: Progress,
): Promise<void> {
  await crowds.open(target.wsUrl, room, names, perS, { since: false, track });
  const s = await crowds.waitFor(
    (s) => s.joined >= names.length,
    wallNow() + SETUP_LIMIT_S * 1000,
    progress,
    `filling the room with ${names.length}`,
  );
  if (s.joined < names.length) {
    throw new Error(
      `Cannot set up: ${s.joined} of ${names.length} members in the room after ${SETUP_LIMIT_S} s`,
    );
  }
}

/** The join storm: N clients hello and join one room, opened at R a second. */
async function joinStorm(target: Target, o: ScenarioOptions, progress: Progress) {
  const n = o.clients ?? (o.quick ? 1000 : STORM_CLIENTS);
  const perS = o.openRate ?? DEFAULT_OPEN_RATE;
  const limitS = o.durationS ?? STORM_LIMIT_S;
  const { room, names } = crowdOf("js", o.tag, n);
  const crowds = await Crowds.start(target);
  try {
    const sampler = new CpuSampler(target.serverPids[0]);
    const startAt = wallNow();
    progress(`opening ${n} clients at ${perS}/s`);
    await crowds.open(target.wsUrl, room, names, perS, { since: false, track: false });
    const opened = await crowds.stats();
    const s = await crowds.waitFor(
      (s) => s.joined + s.failed >= n,
      opened.lastConnectAt + limitS * 1000,
      progress,
      "join storm",
    );
    const { joinedAt, joinMs } = await crowds.joins();
    const samples = sampler.stop();
    const cost = joinCost(samples, joinedAt, startAt);
    const allIn = joinedAt.length === n;
    const lastIn = Math.max(...joinedAt);
    return {
      setup:
        `${n} clients hello and join one room, opened at ${perS}/s; wait at most ${limitS} s ` +
        "after the last connect",
      figures: [
        figure("joined", joinedAt.length, "count", "higher"),
        figure("last connect → all in", allIn ? lastIn - s.lastConnectAt : NaN, "ms", "lower"),
        figure("first connect → all in", allIn ? lastIn - startAt : NaN, "ms", "lower"),
        figure("join p50 (connect → joined)", quantileOf(joinMs, 0.5), "ms", "lower"),
        figure("join p99 (connect → joined)", quantileOf(joinMs, 0.99), "ms", "lower"),
        figure(`server CPU per join, first ${FIRST_JOINS}`, cost.firstMs, "ms", "lower"),
        figure("server CPU per join, last decile", cost.lastDecileMs, "ms", "lower"),
        figure("CPU per join, last decile ÷ first", cost.ratio, "ratio", "lower"),
      ],
      notes: [
        ...(allIn ? [] : [
          `not all in: ${joinedAt.length} of ${n} got joined within ${limitS} s of the last ` +
          "connect (the last decile is of those in)",
        ]),
        ...closesNote(s),
      ],
    };
  } finally {
    await crowds.stop();
  }
}

/** The reconnect storm: M members, a restart, all back at once with `since`. */
async function reconnectStorm(target: Target, o: ScenarioOptions, progress: Progress) {
  const m = o.clients ?? (o.quick ? 500 : RECONNECT_MEMBERS);
  const limitS = o.durationS ?? STORM_LIMIT_S;
  const { room, names } = crowdOf("rs", o.tag, m);
  const writer = `rw${o.tag}`;
  const crowds = await Crowds.start(target);
  try {
    await fill(crowds, target, room, [writer], 1, true, progress);
    await fill(crowds, target, room, names, o.openRate ?? DEFAULT_OPEN_RATE, true, progress);
    await crowds.say(writer, MESSAGES_BEFORE_RESTART);
    await sleep(DRAIN_MS);
    progress("restarting the server");
    const downAt = wallNow();
    await target.restartServer();
    // The writer is back first and talks while everyone else is still away.
    await crowds.open(target.wsUrl, room, [writer], 1, { since: true, track: true });
    await crowds.waitFor((s) => s.joined >= 1, wallNow() + 30_000, progress, "writer back");
    await crowds.say(writer, MESSAGES_WHILE_DOWN);
    const restartMs = wallNow() - downAt;
    progress(`${m} members reconnecting at once`);
    const sampler = new CpuSampler(target.serverPids[0]);
    const startAt = wallNow();
    const talking = crowds.say(writer, MESSAGES_DURING_STORM);
    await crowds.open(target.wsUrl, room, names, 1e9, { since: true, track: true });
    const s = await crowds.waitFor(
      (s) => s.joined >= m + 1,
      startAt + limitS * 1000,
      progress,
      "reconnect storm",
    );
    const { joinedAt, joinMs } = await crowds.joins();
    sampler.stop();
    await talking;
    await sleep(DRAIN_MS);
    const through = (await crowds.stats()).lastSeq;
    const tally = await crowds.verify(through);
    const allBack = joinedAt.length === m;
    return {
      setup: `${m} members and one writer in one room (data on disk); the writer says ` +
        `${MESSAGES_BEFORE_RESTART}, the server restarts, the writer comes back first and says ` +
        `${MESSAGES_WHILE_DOWN}, then all ${m} reconnect at once with since while it says ` +
        `${MESSAGES_DURING_STORM} more; wait at most ${limitS} s`,
      figures: [
        figure("members back", joinedAt.length, "count", "higher"),
        figure("reconnect → joined p50", quantileOf(joinMs, 0.5), "ms", "lower"),
        figure("reconnect → joined p99", quantileOf(joinMs, 0.99), "ms", "lower"),
        figure(
          "storm start → all back",
          allBack ? Math.max(...joinedAt) - startAt : NaN,
          "ms",
          "lower",
        ),
        figure("restart (stop → writer back and said its texts)", restartMs, "ms"),
        figure("clients with every seq exactly once", tally.exact, "count", "higher"),
        figure("seqs missing", tally.missing, "count", "lower"),
        figure("seqs doubled", tally.duplicated, "count", "lower"),
      ],
      notes: [
        `exactly-once over seqs up to ${through}: ${tally.exact} of ${tally.clients} clients back` +
        (tally.examples.length ? `; ${tally.examples.join("; ")}` : ""),
        ...(allBack ? [] : [`not all back: ${joinedAt.length} of ${m} within ${limitS} s`]),
        ...closesNote(s),
      ],
    };
  } finally {
    await crowds.stop();
  }
}

/** Churn: steady chat into one room, without and then with members leaving and rejoining. */
async function churn(target: Target, o: ScenarioOptions, progress: Progress) {
  const m = o.clients ?? (o.quick ? 200 : CHURN_MEMBERS);
  const rate = o.rates?.[0] ?? CHURN_MESSAGE_RATE;
  const windowS = o.durationS ?? (o.quick ? 10 : 60);
  const perMin = o.churnPerMin ?? DEFAULT_CHURN_PER_MIN;
  const { room, names } = crowdOf("ch", o.tag, m);
  const senders = names.slice(0, Math.min(CHURN_SENDERS, m));
  const churners = names.slice(senders.length);
  const crowds = await Crowds.start(target);
  try {
    await fill(crowds, target, room, names, o.openRate ?? DEFAULT_OPEN_RATE, true, progress);
    const phase = async (label: string, withChurn: boolean) => {
      const startAt = wallNow() + 300;
      const measureFrom = startAt + 1000;
      const stopAt = measureFrom + windowS * 1000;
      const meter = new ProcessMeter(target.serverPids);
      await crowds.send(senders, rate, { startAt, measureFrom, stopAt });
      if (withChurn) await crowds.churn(churners, (churners.length * perMin) / 60, stopAt);
      await sleep(measureFrom - wallNow());
      meter.start();
      while (wallNow() < stopAt) {
        await sleep(Math.min(1000, stopAt - wallNow()));
        progress(`${label}: ${((wallNow() - measureFrom) / 1000).toFixed(0)}/${windowS} s`);
      }
      const cpu = meter.stop();
      await sleep(DRAIN_MS);
      // Every churning member is back before the next phase (or the verdict).
      await crowds.waitFor((s) => s.joined >= m, wallNow() + 30_000, progress, "rejoining");
      return { latency: (await crowds.latency()).summary(), cpu };
    };
    const calm = await phase("without churn", false);
    const churned = await phase("with churn", true);
    const s = await crowds.stats();
    const tally = await crowds.verify(s.lastSeq);
    return {
      setup: `${m} members in one room, ${senders.length} of them sending ${rate} msg/s in all; ` +
        `${windowS} s without churn, then ${windowS} s while ${
          (perMin * 100).toFixed(0)
        }% of the ` +
        `others leave and rejoin (with since, ${CHURN_AWAY_MS} ms away) per minute`,
      figures: [
        figure("p50 without churn", calm.latency.p50, "ms", "lower"),
        figure("p99 without churn", calm.latency.p99, "ms", "lower"),
        figure("p50 with churn", churned.latency.p50, "ms", "lower"),
        figure("p99 with churn", churned.latency.p99, "ms", "lower"),
        figure(
          "p99 with ÷ without churn",
          churned.latency.p99 / calm.latency.p99,
          "ratio",
          "lower",
        ),
        figure("server CPU without churn", calm.cpu, "share", "lower"),
        figure("server CPU with churn", churned.cpu, "share", "lower"),
        figure("leaves and rejoins", s.rejoined, "count"),
        figure("clients with every seq exactly once", tally.exact, "count", "higher"),
        figure("seqs missing", tally.missing, "count", "lower"),
        figure("seqs doubled", tally.duplicated, "count", "lower"),
      ],
      notes: [
        `samples: ${calm.latency.count} deliveries without churn, ${churned.latency.count} with`,
        `exactly-once over seqs up to ${s.lastSeq}, across every leave and rejoin: ` +
        `${tally.exact} of ${tally.clients} clients` +
        (tally.examples.length ? `; ${tally.examples.join("; ")}` : ""),
        ...closesNote(s),
      ],
    };
  } finally {
    await crowds.stop();
  }
}

/** Idle members: N connections in one room that only read; the server's RSS per connection. */
async function idleRoom(target: Target, o: ScenarioOptions, progress: Progress) {
  const n = o.clients ?? (o.quick ? 1000 : STORM_CLIENTS);
  const limitS = o.durationS ?? SETUP_LIMIT_S;
  const { room, names } = crowdOf("ir", o.tag, n);
  const crowds = await Crowds.start(target);
  try {
    await sleep(1000);
    const before = target.serverRss();
    await crowds.open(target.wsUrl, room, names, o.openRate ?? DEFAULT_OPEN_RATE, {
      since: false,
      track: false,
    });
    const s = await crowds.waitFor(
      (s) => s.joined + s.failed >= n,
      wallNow() + limitS * 1000,
      progress,
      `filling the room with ${n}`,
    );
    await sleep(2000);
    const after = target.serverRss();
    const open = s.opened - s.failed - Object.values(s.closes).reduce((a, b) => a + b, 0);
    return {
      setup: `${n} connections in one room, opened at ${o.openRate ?? DEFAULT_OPEN_RATE}/s, ` +
        "sending nothing; server RSS before they open and 2 s after they are in",
      figures: [
        figure("in the room", s.joined, "count", "higher"),
        figure("server RSS before", before, "bytes"),
        figure("server RSS after", after, "bytes"),
        figure("server RSS per connection", (after - before) / open, "bytes", "lower"),
      ],
      notes: [
        ...(s.joined < n
          ? [
            `not all in: ${s.joined} of ${n} within ${limitS} s; RSS is per open connection, ` +
            "measured while the server still worked through the joins",
          ]
          : []),
        ...closesNote(s),
      ],
    };
  } finally {
    await crowds.stop();
  }
}

/** Runs large-room scenario `name` against `target`. */
export async function runLargeRoom(
  name: LargeRoomScenario,
  target: Target,
  o: ScenarioOptions,
  progress: Progress,
): Promise<ScenarioResult> {
  if (target.serverPids.length !== 1) {
    throw new Error(`Cannot run ${name}: it needs exactly one server with a known pid`);
  }
  const run = name === "join-storm"
    ? joinStorm
    : name === "reconnect-storm"
    ? reconnectStorm
    : name === "churn"
    ? churn
    : idleRoom;
  const r = await run(target, o, progress);
  return {
    scenario: name,
    target: target.label,
    setup: r.setup,
    steps: [],
    figures: r.figures,
    notes: r.notes,
  };
}
