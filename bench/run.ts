/**
 * One target under load: a server (started here or given by URL) — or several instances sharing
 * a private Redis — its load generators, and the measured step: connect clients, send at a fixed
 * rate for a window, drain, collect.
 */

import { type ClientSpec, type Counters, emptyCounters } from "./control.ts";
import { Histogram, type LatencySummary } from "./histogram.ts";
import { CoreMeter, type CoreUse, ProcessMeter, statusBytes } from "./proc.ts";
import {
  LoadGenerator,
  RedisProcess,
  type ServerKind,
  ServerProcess,
  type ServerSource,
} from "./processes.ts";
import { wallNow } from "./frames.ts";

/** Clients each load generator sets up at once. */
export const CONNECT_CONCURRENCY = 50;
/** How long connecting one batch of clients may take, in ms. */
export const CONNECT_TIMEOUT_MS = 180_000;
/** Delay between telling the generators to run and the first send, in ms. */
const START_DELAY_MS = 300;
/**
 * How long a generator may take to answer a progress poll, in ms: under overload its core can be
 * busy reading for seconds (an old server's backlog once kept one past 10 s).
 */
const STATS_TIMEOUT_MS = 30_000;
/** Drain ends when deliveries stop changing for this long, in ms. */
const DRAIN_QUIET_MS = 1_000;
const DRAIN_POLL_MS = 250;

/** Where the bench runs things: which cores, how many generator processes. */
export interface Placement {
  /** Core for the server (every instance, and Redis), or undefined to leave them unpinned. */
  serverCore?: number;
  /** Core for the load generators, or undefined to leave them unpinned. */
  loadCore?: number;
  /** Number of load-generator processes. */
  workers: number;
  /** Generators exit by themselves after this many seconds. */
  maxLifetimeS: number;
  /** Socket implementation in the generators: epoll (FFI, Linux) or deno (Deno.connect). */
  io: "epoll" | "deno";
}

/** What to measure against: servers to start, or one already running. */
export type TargetSpec =
  | {
    kind: ServerKind;
    args: string[];
    /** Server processes to start (real server only); clients are split over them. @default 1 */
    instances?: number;
    /** Start a private Redis and pass `--redis URL` to every instance. @default false */
    redis?: boolean;
    /** Name in the report. @default kind */
    label?: string;
    /** Another checkout's main.ts, or the Bun executable. @default this checkout */
    source?: ServerSource;
  }
  | { kind: "url"; url: string; pid?: number };

/** The figures of one measured window. */
export interface StepResult {
  label: string;
  /** Messages per second the generators were asked to send (into the server). */
  offered: number;
  /** Messages per second actually sent inside the window. */
  sentPerS: number;
  /** Messages sent in the whole step, warm-up included. */
  sent: number;
  /** Of those, how many the server refused as busy (`rate_limited`). */
  refused: number;
  /** Deliveries of any message of the step (warm-up included, repeats not), until the drain ended. */
  deliveredAll: number;
  /** Deliveries expected for messages sent in the window (messages × room members). */
  expected: number;
  /** Of those, how many arrived before the drain ended. */
  delivered: number;
  /** delivered / expected. */
  ratio: number;
  /** Deliveries received per second while the window was open. */
  deliveredPerS: number;
  latency: LatencySummary;
  /** Latency split at the message's server `ts` (1 ms resolution): send → server took it. */
  toServer: LatencySummary;
  /** ... and server took it → received (store, fan-out, kernel, generator). */
  fromServer: LatencySummary;
  /** Server CPU over the window, as a share of one core, summed over instances (NaN if unknown). */
  serverCpu: number;
  /** The same per instance, in start order. */
  serverCpus: number[];
  /** Redis CPU over the window, as a share of one core (NaN when there is no Redis). */
  redisCpu: number;
  /** Highest server RSS sampled in the window, in bytes. */
  serverPeakRss: number;
  /** Load-generator CPU over the window, as a share of one core. */
  loadCpu: number;
  /** Per core over the window: busy share (any process, kernel included) and hypervisor steal. */
  cores: CoreUse[];
  /** Messages per text frame the clients received (the server's batching), over the step. */
  messagesPerFrame: number;
  /** Socket reads per second in the load generators, over the step (their main cost). */
  readsPerS: number;
  /** Clients the server disconnected during the step, by close code. */
  closes: Record<string, number>;
  /** Message lines a client got a second time (same seq), over the step. */
  seqRepeated: number;
  /** Of those, the client's own messages (a second echo). */
  seqRepeatedOwn: number;
  /** Lines that arrived after a higher seq, for the first time (out of order). */
  seqLate: number;
  /** Seqs clients jumped over; minus `seqLate`, never arrived (within the step). */
  seqSkipped: number;
}

/** Options for {@linkcode Target.runStep}. */
export interface StepOptions {
  label: string;
  /** Total messages per second into the server. */
  rate: number;
  /** Names of the clients that send; the rate is spread evenly over them. */
  senders: string[];
  warmupS: number;
  durationS: number;
  /** Longest wait for late deliveries after sending stops, in seconds. */
  drainS: number;
  textBytes: number;
}

/** Server processes (one per instance), a Redis they share, and the load generators. */
export class Target {
  readonly label: string;
  /** The first instance's address (the only one unless there are several instances). */
  wsUrl: string;
  /** Every instance's address, in start order. */
  wsUrls: string[];
  /** The servers this target started, in start order (empty for a URL target). */
  servers: ServerProcess[];
  /** The private Redis the instances share, if any. */
  readonly redis: RedisProcess | undefined;
  /** Pids of the servers (a URL target's pid when given). */
  serverPids: number[];
  /** Where this target's processes run (scenarios that start their own clients use it too). */
  readonly place: Placement;
  readonly loadgens: LoadGenerator[];
  #owner = new Map<string, LoadGenerator>();
  /** Index into `wsUrls` of each client's server. */
  #serverOf = new Map<string, number>();
  #assigned = 0;
  /** Clients dealt to each generator so far, to alternate its clients over the servers. */
  #dealt: number[];

  private constructor(
    label: string,
    wsUrls: string[],
    servers: ServerProcess[],
    pids: number[],
    loadgens: LoadGenerator[],
    redis: RedisProcess | undefined,
    place: Placement,
  ) {
    this.place = place;
    this.label = label;
    this.wsUrl = wsUrls[0];
    this.wsUrls = wsUrls;
    this.servers = servers;
    this.serverPids = pids;
    this.loadgens = loadgens;
    this.redis = redis;
    this.#dealt = loadgens.map(() => 0);
  }

  /** The first server this target started, if any. */
  get server(): ServerProcess | undefined {
    return this.servers[0];
  }

  /**
   * Starts Redis (if asked), the servers (unless given by URL) and the load generators. On any
   * failure it stops whatever it had started before rethrowing.
   */
  static async open(spec: TargetSpec, place: Placement): Promise<Target> {
    let redis: RedisProcess | undefined;
    const servers: ServerProcess[] = [];
    const loadgens: LoadGenerator[] = [];
    try {
      if (spec.kind !== "url") {
        // Redis shares the servers' core: the comparison with one instance keeps the same
        // CPU for the whole server side (see docs/performance.md, "Two instances on one Redis").
        if (spec.redis) redis = await RedisProcess.start(place.serverCore);
        const args = redis ? [...spec.args, "--redis", redis.url] : spec.args;
        for (let i = 0; i < (spec.instances ?? 1); i++) {
          servers.push(await ServerProcess.start(spec.kind, args, place.serverCore, spec.source));
        }
      }
      for (let i = 0; i < place.workers; i++) {
        loadgens.push(new LoadGenerator(place.loadCore, place.maxLifetimeS, place.io));
      }
      // A cheap request proves every generator is up before anything is timed.
      await Promise.all(loadgens.map((g) => g.request({ cmd: "stats" }, 30_000)));
    } catch (e) {
      await Promise.all(loadgens.map((g) => g.stop()));
      await Promise.all(servers.map((s) => s.stop()));
      await redis?.stop();
      throw e;
    }
    if (spec.kind === "url") {
      const pids = spec.pid === undefined ? [] : [spec.pid];
      return new Target("url", [spec.url], [], pids, loadgens, undefined, place);
    }
    return new Target(
      spec.label ?? spec.kind,
      servers.map((s) => s.wsUrl),
      servers,
      servers.map((s) => s.pid),
      loadgens,
      redis,
      place,
    );
  }

  /**
   * Restarts the one server this target started (same flags and data file, a new port); its
   * clients must connect again to the new `wsUrl`.
   */
  async restartServer(): Promise<void> {
    if (this.servers.length !== 1) {
      throw new Error(
        `Cannot restart the server: this target has ${this.servers.length} servers it started`,
      );
    }
    const server = await this.servers[0].restart();
    this.servers = [server];
    this.wsUrl = server.wsUrl;
    this.wsUrls = [server.wsUrl];
    this.serverPids = [server.pid];
  }

  /** Current server RSS in bytes, summed over instances (NaN when the pid is unknown). */
  serverRss(): number {
    return this.serverPids.length === 0
      ? NaN
      : this.serverPids.reduce((sum, pid) => sum + statusBytes(pid, "VmRSS"), 0);
  }

  /** Peak server RSS since start (VmHWM), in bytes, summed over instances' own peaks. */
  serverPeakRss(): number {
    return this.serverPids.length === 0
      ? NaN
      : this.serverPids.reduce((sum, pid) => sum + statusBytes(pid, "VmHWM"), 0);
  }

  /** A meter over every server process (empty when the pid is unknown). */
  serverMeter(): ProcessMeter {
    return new ProcessMeter(this.serverPids);
  }

  /** How many of `names` connected to each instance, in start order. */
  clientsPerServer(names: string[]): number[] {
    const counts = this.wsUrls.map(() => 0);
    for (const name of names) {
      const i = this.#serverOf.get(name);
      if (i !== undefined) counts[i]++;
    }
    return counts;
  }

  /**
   * Connects `specs`, spreading them round-robin over the generators; returns counts. With
   * several instances, each generator deals its clients to the instances in turn, generator g
   * starting at instance g: the halves are equal, each generator holds clients of every
   * instance, and consecutive clients (the senders) alternate between instances.
   */
  async connect(specs: ClientSpec[]): Promise<{ ready: number; failed: number; ms: number }> {
    const batches = this.loadgens.map(() => [] as ClientSpec[]);
    for (const spec of specs) {
      const i = this.#assigned++ % this.loadgens.length;
      const s = (this.#dealt[i]++ + i) % this.wsUrls.length;
      batches[i].push(this.wsUrls.length > 1 ? { ...spec, url: this.wsUrls[s] } : spec);
      this.#owner.set(spec.name, this.loadgens[i]);
      this.#serverOf.set(spec.name, s);
    }
    const started = performance.now();
    const replies = await Promise.all(this.loadgens.map((g, i) =>
      g.request(
        { cmd: "connect", url: this.wsUrl, clients: batches[i], concurrency: CONNECT_CONCURRENCY },
        CONNECT_TIMEOUT_MS,
      )
    ));
    return {
      ready: replies.reduce((n, r) => n + r.counters.ready, 0),
      failed: replies.reduce((n, r) => n + r.counters.failed, 0),
      ms: performance.now() - started,
    };
  }

  /** Sends at `rate` for warm-up + duration, waits for late deliveries, and measures. */
  async runStep(opts: StepOptions, progress: (line: string) => void): Promise<StepResult> {
    const bySender = new Map<LoadGenerator, string[]>();
    for (const name of opts.senders) {
      const g = this.#owner.get(name);
      if (!g) throw new Error(`Cannot run step: no generator owns sender ${name}`);
      bySender.set(g, [...(bySender.get(g) ?? []), name]);
    }
    const startAt = wallNow() + START_DELAY_MS;
    const measureFrom = startAt + opts.warmupS * 1000;
    const stopAt = measureFrom + opts.durationS * 1000;
    await Promise.all(this.loadgens.map((g) => {
      const senders = bySender.get(g) ?? [];
      return g.request({
        cmd: "run",
        startAt,
        measureFrom,
        stopAt,
        rate: (opts.rate * senders.length) / opts.senders.length,
        senders,
        textBytes: opts.textBytes,
      });
    }));

    const server = this.serverMeter();
    const instances = this.serverPids.map((pid) => new ProcessMeter([pid]));
    const redis = this.redis ? new ProcessMeter([this.redis.pid]) : undefined;
    const load = new ProcessMeter(this.loadgens.map((g) => g.pid));
    const cores = new CoreMeter();
    await sleep(measureFrom - wallNow());
    server.start();
    for (const m of instances) m.start();
    redis?.start();
    load.start();
    cores.start();
    let last = await this.#stats();
    let lastAt = performance.now();
    const readsAtStart = last.reads;
    while (wallNow() < stopAt) {
      await sleep(Math.min(1_000, stopAt - wallNow()));
      const now = await this.#stats();
      const at = performance.now();
      const elapsed = Math.min(opts.durationS, (wallNow() - measureFrom) / 1000);
      progress(
        `${opts.label}: ${elapsed.toFixed(1)}/${opts.durationS} s, ` +
          `in ${fmtRate((now.sent - last.sent) / ((at - lastAt) / 1000))}/s, ` +
          `out ${fmtRate((now.delivered - last.delivered) / ((at - lastAt) / 1000))}/s, ` +
          `server CPU ${instances.map((m) => pct(m.cpuShare())).join(" + ")}` +
          (redis ? `, Redis CPU ${pct(redis.cpuShare())}` : "") +
          `, RSS ${mb(server.rss())}, ` +
          `load CPU ${pct(load.cpuShare())}`,
      );
      last = now;
      lastAt = at;
    }
    const serverCpu = server.stop();
    const serverCpus = instances.map((m) => m.stop());
    const redisCpu = redis ? redis.stop() : NaN;
    const loadCpu = load.stop();
    const coreUse = cores.read();
    const readsInWindow = last.reads - readsAtStart;

    // Late deliveries still count (and carry their full latency) until the room goes quiet.
    const drainUntil = performance.now() + opts.drainS * 1000;
    let quietSince = performance.now();
    while (performance.now() < drainUntil) {
      await sleep(DRAIN_POLL_MS);
      const now = await this.#stats();
      if (now.deliveredOfWindow >= now.expected) break;
      if (now.delivered !== last.delivered) quietSince = performance.now();
      else if (performance.now() - quietSince >= DRAIN_QUIET_MS) break;
      progress(`${opts.label}: draining, ${pct(now.deliveredOfWindow / now.expected)} delivered`);
      last = now;
    }

    const replies = await Promise.all(this.loadgens.map((g) => g.request({ cmd: "collect" })));
    const histogram = new Histogram();
    const toServer = new Histogram();
    const fromServer = new Histogram();
    for (const r of replies) {
      if (r.histogram) histogram.merge(r.histogram);
      if (r.toServer) toServer.merge(r.toServer);
      if (r.fromServer) fromServer.merge(r.fromServer);
    }
    const total = sumCounters(replies.map((r) => r.counters));
    return {
      label: opts.label,
      offered: opts.rate,
      sentPerS: total.sentInWindow / opts.durationS,
      sent: total.sent,
      refused: total.refused,
      deliveredAll: total.delivered,
      expected: total.expected,
      delivered: total.deliveredOfWindow,
      ratio: total.expected > 0 ? total.deliveredOfWindow / total.expected : NaN,
      deliveredPerS: total.deliveredDuringWindow / opts.durationS,
      latency: histogram.summary(),
      toServer: toServer.summary(),
      fromServer: fromServer.summary(),
      serverCpu,
      serverCpus,
      redisCpu,
      serverPeakRss: server.peakRss,
      loadCpu,
      cores: coreUse,
      messagesPerFrame: total.delivered / total.frames,
      readsPerS: readsInWindow / opts.durationS,
      closes: total.closes,
      seqRepeated: total.seqRepeated,
      seqRepeatedOwn: total.seqRepeatedOwn,
      seqLate: total.seqLate,
      seqSkipped: total.seqSkipped,
    };
  }

  /** Counters summed over the generators. */
  async #stats(): Promise<Counters> {
    const replies = await Promise.all(
      this.loadgens.map((g) => g.request({ cmd: "stats" }, STATS_TIMEOUT_MS)),
    );
    return sumCounters(replies.map((r) => r.counters));
  }

  /** Closes every client, stops the generators, the servers, then Redis; safe to call twice. */
  async close(): Promise<void> {
    await Promise.all(this.loadgens.map((g) => g.stop()));
    await Promise.all(this.servers.map((s) => s.stop()));
    await this.redis?.stop();
  }
}

function sumCounters(all: Counters[]): Counters {
  const total = emptyCounters();
  for (const c of all) {
    total.frames += c.frames;
    total.reads += c.reads;
    total.ready += c.ready;
    total.failed += c.failed;
    total.sent += c.sent;
    total.sentInWindow += c.sentInWindow;
    total.expected += c.expected;
    total.delivered += c.delivered;
    total.deliveredOfWindow += c.deliveredOfWindow;
    total.deliveredDuringWindow += c.deliveredDuringWindow;
    total.bytesRead += c.bytesRead;
    total.seqRepeated += c.seqRepeated;
    total.seqRepeatedOwn += c.seqRepeatedOwn;
    total.seqLate += c.seqLate;
    total.seqSkipped += c.seqSkipped;
    total.refused += c.refused;
    for (const [code, n] of Object.entries(c.closes)) {
      total.closes[code] = (total.closes[code] ?? 0) + n;
    }
  }
  return total;
}

/** Resolves after `ms` (at once when `ms` ≤ 0). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** "1.23M", "456k", "789". */
export function fmtRate(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

function pct(share: number): string {
  return Number.isFinite(share) ? `${(share * 100).toFixed(0)}%` : "n/a";
}

function mb(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(0)} MB` : "n/a";
}
