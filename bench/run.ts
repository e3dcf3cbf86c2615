/**
 * One target under load: a server (started here or given by URL), its load generators, and the
 * measured step — connect clients, send at a fixed rate for a window, drain, collect.
 */

import type { ClientSpec, Counters } from "./control.ts";
import { Histogram, type LatencySummary } from "./histogram.ts";
import { CoreMeter, type CoreUse, ProcessMeter, statusBytes } from "./proc.ts";
import { LoadGenerator, type ServerKind, ServerProcess } from "./processes.ts";
import { wallNow } from "./frames.ts";

/** Clients each load generator sets up at once. */
export const CONNECT_CONCURRENCY = 50;
/** How long connecting one batch of clients may take, in ms. */
export const CONNECT_TIMEOUT_MS = 180_000;
/** Delay between telling the generators to run and the first send, in ms. */
const START_DELAY_MS = 300;
/** Drain ends when deliveries stop changing for this long, in ms. */
const DRAIN_QUIET_MS = 1_000;
const DRAIN_POLL_MS = 250;

/** Where the bench runs things: which cores, how many generator processes. */
export interface Placement {
  /** Core for the server, or undefined to leave it unpinned. */
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

/** What to measure against: a server to start, or one already running. */
export type TargetSpec =
  | { kind: ServerKind; args: string[] }
  | { kind: "url"; url: string; pid?: number };

/** The figures of one measured window. */
export interface StepResult {
  label: string;
  /** Messages per second the generators were asked to send (into the server). */
  offered: number;
  /** Messages per second actually sent inside the window. */
  sentPerS: number;
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
  /** Server CPU over the window, as a share of one core (NaN when unknown). */
  serverCpu: number;
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

/** A server plus the load generators aimed at it, for one scenario. */
export class Target {
  readonly label: string;
  readonly wsUrl: string;
  readonly server: ServerProcess | undefined;
  readonly serverPid: number | undefined;
  readonly loadgens: LoadGenerator[];
  #owner = new Map<string, LoadGenerator>();
  #assigned = 0;

  private constructor(
    label: string,
    wsUrl: string,
    server: ServerProcess | undefined,
    pid: number | undefined,
    loadgens: LoadGenerator[],
  ) {
    this.label = label;
    this.wsUrl = wsUrl;
    this.server = server;
    this.serverPid = pid;
    this.loadgens = loadgens;
  }

  /** Starts the server (unless given by URL) and the load generators. */
  static async open(spec: TargetSpec, place: Placement): Promise<Target> {
    const server = spec.kind === "url"
      ? undefined
      : await ServerProcess.start(spec.kind, spec.args, place.serverCore);
    const loadgens = Array.from(
      { length: place.workers },
      () => new LoadGenerator(place.loadCore, place.maxLifetimeS, place.io),
    );
    // A cheap request proves every generator is up before anything is timed.
    try {
      await Promise.all(loadgens.map((g) => g.request({ cmd: "stats" }, 30_000)));
    } catch (e) {
      await Promise.all(loadgens.map((g) => g.stop()));
      await server?.stop();
      throw e;
    }
    return spec.kind === "url"
      ? new Target("url", spec.url, undefined, spec.pid, loadgens)
      : new Target(spec.kind, server!.wsUrl, server, server!.pid, loadgens);
  }

  /** Current server RSS in bytes (NaN when the pid is unknown). */
  serverRss(): number {
    return this.serverPid === undefined ? NaN : statusBytes(this.serverPid, "VmRSS");
  }

  /** Peak server RSS since it started (VmHWM), in bytes. */
  serverPeakRss(): number {
    return this.serverPid === undefined ? NaN : statusBytes(this.serverPid, "VmHWM");
  }

  /** A meter over the server process (empty when the pid is unknown). */
  serverMeter(): ProcessMeter {
    return new ProcessMeter(this.serverPid === undefined ? [] : [this.serverPid]);
  }

  /** Connects `specs`, spreading them round-robin over the generators; returns counts. */
  async connect(specs: ClientSpec[]): Promise<{ ready: number; failed: number; ms: number }> {
    const batches = this.loadgens.map(() => [] as ClientSpec[]);
    for (const spec of specs) {
      const i = this.#assigned++ % this.loadgens.length;
      batches[i].push(spec);
      this.#owner.set(spec.name, this.loadgens[i]);
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
    const load = new ProcessMeter(this.loadgens.map((g) => g.pid));
    const cores = new CoreMeter();
    await sleep(measureFrom - wallNow());
    server.start();
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
          `server CPU ${pct(server.cpuShare())}, RSS ${mb(server.rss())}, ` +
          `load CPU ${pct(load.cpuShare())}`,
      );
      last = now;
      lastAt = at;
    }
    const serverCpu = server.stop();
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
      expected: total.expected,
      delivered: total.deliveredOfWindow,
      ratio: total.expected > 0 ? total.deliveredOfWindow / total.expected : NaN,
      deliveredPerS: total.deliveredDuringWindow / opts.durationS,
      latency: histogram.summary(),
      toServer: toServer.summary(),
      fromServer: fromServer.summary(),
      serverCpu,
      serverPeakRss: server.peakRss,
      loadCpu,
      cores: coreUse,
      messagesPerFrame: total.delivered / total.frames,
      readsPerS: readsInWindow / opts.durationS,
      closes: total.closes,
    };
  }

  /** Counters summed over the generators. */
  async #stats(): Promise<Counters> {
    const replies = await Promise.all(this.loadgens.map((g) => g.request({ cmd: "stats" })));
    return sumCounters(replies.map((r) => r.counters));
  }

  /** Closes every client, stops the generators and the server; safe to call twice. */
  async close(): Promise<void> {
    await Promise.all(this.loadgens.map((g) => g.stop()));
    await this.server?.stop();
  }
}

function sumCounters(all: Counters[]): Counters {
  const total: Counters = {
    ready: 0,
    failed: 0,
    closes: {},
    sent: 0,
    sentInWindow: 0,
    expected: 0,
    delivered: 0,
    deliveredOfWindow: 0,
    deliveredDuringWindow: 0,
    frames: 0,
    reads: 0,
    bytesRead: 0,
  };
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
