/**
 * The chat server benchmark: starts the server under test pinned to one core, drives it with
 * real WebSocket clients from load-generator processes pinned to another, and prints latency,
 * throughput, CPU and memory figures as Markdown — optionally against a naive baseline server,
 * or (`--instances 2`) two instances on one Redis against one instance.
 *
 * Usage: deno task bench [--scenario all] [--mode both] [--quick] …  (see --help)
 */

import { parseArgs } from "node:util";
import { epollAvailable } from "./epoll_client.ts";
import { CoreMeter, machineInfo } from "./proc.ts";
import { scenarioSection } from "./report.ts";
import { serverCommand } from "./processes.ts";
import { redisServerVersion } from "../scripts/redis_process.ts";
import { type Placement, Target, type TargetSpec } from "./run.ts";
import { combineRepeats, DEFAULT_TEXT_BYTES, SLOW_TEXT_BYTES } from "./scenarios.ts";
import {
  LARGE_ROOM_SCENARIOS,
  type ScenarioName,
  type ScenarioResult,
  SCENARIOS,
} from "./scenario_types.ts";
import {
  CHURN_MEMBERS,
  DEFAULT_CHURN_PER_MIN,
  DEFAULT_OPEN_RATE,
  RECONNECT_MEMBERS,
  SETUP_LIMIT_S,
  STORM_CLIENTS,
  STORM_LIMIT_S,
} from "./large_room.ts";
import { runScenario } from "./scenario_runner.ts";
import { sleep } from "./run.ts";
import { OVERLOAD_CLIENTS, OVERLOAD_FACTOR, SLOW_MEMBERS, STALLED_MEMBERS } from "./overload.ts";

/** Core the server runs on; load generators and this process use LOAD_CORE. */
export const SERVER_CORE = 0;
export const LOAD_CORE = 1;
/**
 * Load-generator processes by default: one, because they all run on LOAD_CORE. Two processes on
 * one core take turns, so a delivery could wait out the other's time slice before it was read,
 * and a send after its stamp: that doubled the measured p50 at 100k deliveries/s (9.3 → 4.8 ms
 * with one process; docs/performance.md). More processes help only with more cores (--no-pin).
 */
export const DEFAULT_WORKERS = 1;
/** A core counts as quiet below this busy share (other jobs share the machine). */
export const QUIET_CORE_BUSY = 0.3;
/** The whole run is killed after this long, whatever happens, in seconds. */
export const RUN_TIME_LIMIT_S = 20 * 60;
/** Seconds the whole run may wait for a quiet machine: default, and with --instances > 1. */
export const DEFAULT_QUIET_WAIT_S = 120;
export const INSTANCES_QUIET_WAIT_S = 60;
/** Most instances --instances accepts (all share one core; see docs/performance.md). */
export const MAX_INSTANCES = 4;
/** Scenarios that --instances > 1 runs: one room spread over every instance. */
export const INSTANCE_SCENARIOS: readonly ScenarioName[] = ["latency", "capacity"];
/** Target names in --instances mode; the first is the baseline every ratio is against. */
export const BASELINE_LABEL = "1 instance";
const ONE_REDIS_LABEL = "1 instance + Redis";
const manyRedisLabel = (n: number) => `${n} instances + Redis`;
const INSTANCE_SCENARIO_LIST = INSTANCE_SCENARIOS.join(", ");

const HELP = `Usage: deno task bench [options]

Starts the server under test (pinned to core ${SERVER_CORE} with taskset) and load-generator
processes (pinned to core ${LOAD_CORE}), runs the scenarios and prints Markdown tables on stdout.
Progress goes to stderr. Traffic goes only to 127.0.0.1 (or --url).

Options:
  --scenario NAME     ${SCENARIOS.join(", ")} or all (default all);
                      several with commas. overload probes the capacity, then offers
                      ${OVERLOAD_FACTOR}× it to one room of fast readers, ${STALLED_MEMBERS} stalled members (never read)
                      and ${SLOW_MEMBERS} slow ones (~100 KB/s): delivery per kind, evictions by kind,
                      rate_limited refusals, peak RSS.
                      Large rooms (not in all; the real server only; --scenario large-room
                      runs the four): join-storm (${STORM_CLIENTS} clients join one room, opened at
                      --open-rate; time from the last connect until all are in, server CPU per
                      join first vs last decile), reconnect-storm (${RECONNECT_MEMBERS} members, a restart
                      on the same data file, all back at once with since: time to joined,
                      every missed message exactly once), churn (${CHURN_MEMBERS} members, 100 msg/s,
                      p99 without vs with --churn), idle-room (${STORM_CLIENTS} idle connections in one
                      room: server RSS per connection). --clients sets their size, --duration
                      their wait bound (storms: default ${STORM_LIMIT_S} s; idle-room: ${SETUP_LIMIT_S} s)
                      or window (churn)
  --mode MODE         server, naive or both (default both: every figure also as server ÷ naive)
  --bun PATH          also measure Bun's pub/sub (bench/bun_server.ts run by the Bun executable
                      PATH, e.g. from \`npm install bun\` in a scratch directory), same scenarios
  --compare-server DIR  also measure the real server from another checkout DIR (e.g. a
                      \`git worktree add\` of an older commit), labelled server@<its commit>
  --baseline NAME     target every ratio is against: naive, server, bun or server@<commit>
                      (default naive; with --instances, the one-instance run)
  --instances N       N > 1: instead of the naive comparison, run the real server three ways in
                      the same run: one instance (--data, the baseline), one instance with
                      --redis, and N instances with --redis, clients split evenly over them;
                      a private redis-server on a free 127.0.0.1 port, pinned with the servers
                      to core ${SERVER_CORE}. Scenarios: ${INSTANCE_SCENARIO_LIST} (the default then).
                      Every figure also as a ratio of the one-instance baseline. (default 1)
  --quick             small and short: 100 clients, ~3 s per step (for development)
  --clients N         clients per scenario (default 1000; slow and overload: ${OVERLOAD_CLIENTS}; idle:
                      10000)
  --rate R[,R…]       messages/s into the server (capacity: the rates to climb; others: first;
                      overload: the offered rate, instead of ${OVERLOAD_FACTOR}× the probed capacity)
  --duration S        measured seconds per step (default 5-10 by scenario)
  --open-rate R       large rooms: clients opened per second (default ${DEFAULT_OPEN_RATE})
  --churn P           churn: percent of the room's members that leave and rejoin per minute
                      (default ${DEFAULT_CHURN_PER_MIN * 100})
  --url URL           measure a running server (ws://host:port/ws) instead of starting one
  --pid PID           with --url: that server's pid, for CPU and memory figures
  --workers N         load-generator processes (default ${DEFAULT_WORKERS})
  --text-bytes N      size of each text (default ${DEFAULT_TEXT_BYTES}; slow: ${SLOW_TEXT_BYTES})
  --send-queue-bytes N  passed to the real server (default: the server's own)
  --data PATH         passed to the real server (default :memory:; with --instances, to the
                      one-instance baseline only)
  --io epoll|deno     generator sockets: epoll via FFI (default on Linux x86-64) or
                      Deno.connect (portable; measured ~1.4x the CPU per read)
  --no-pin            do not pin processes to cores
  --repeat N          run each scenario N times per target (alternating targets) and
                      report the median of every figure; every run's steps are listed
  --quiet-wait S      before each scenario run, wait for both cores to be under
                      ${
  QUIET_CORE_BUSY * 100
}% busy; at most S seconds over the whole run (default ${DEFAULT_QUIET_WAIT_S};
                      with --instances: ${INSTANCES_QUIET_WAIT_S})
  --json FILE         also write every result as JSON
  -h, --help          show this help
`;

interface Options {
  scenarios: ScenarioName[];
  modes: ("naive" | "server")[];
  /** The Bun executable, to measure Bun's pub/sub beside the others. */
  bun?: string;
  /** Another checkout of the real server to measure beside this one, and its label. */
  /** Another checkout's server; `known` holds the flags its --help lists. */
  compare?: { root: string; label: string; known: Set<string> };
  /** Target the ratios are against. */
  baseline: string;
  /** Server instances in the multi-instance comparison; 1 = the usual naive comparison. */
  instances: number;
  url?: string;
  pid?: number;
  quick: boolean;
  clients?: number;
  rates?: number[];
  durationS?: number;
  openRate?: number;
  churnPerMin?: number;
  workers: number;
  textBytes?: number;
  /** Flags for the real server, without the history store (`--data` or `--redis`). */
  serverArgs: string[];
  /** `--data` value for a single instance without Redis. */
  data: string;
  pin: boolean;
  io: "epoll" | "deno";
  repeat: number;
  /** Seconds the whole run may spend waiting for other jobs to quiet down. */
  quietWaitS: number;
  json?: string;
}

function positiveInt(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`Cannot read --${name}: expected a positive integer, got "${text}"`);
  }
  return n;
}

function parseOptions(args: string[]): Options | "help" {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      scenario: { type: "string" },
      mode: { type: "string" },
      instances: { type: "string", default: "1" },
      quick: { type: "boolean", default: false },
      clients: { type: "string" },
      rate: { type: "string" },
      duration: { type: "string" },
      "open-rate": { type: "string" },
      churn: { type: "string" },
      url: { type: "string" },
      pid: { type: "string" },
      workers: { type: "string" },
      "text-bytes": { type: "string" },
      "send-queue-bytes": { type: "string" },
      data: { type: "string", default: ":memory:" },
      "no-pin": { type: "boolean", default: false },
      io: { type: "string" },
      json: { type: "string" },
      repeat: { type: "string" },
      "quiet-wait": { type: "string" },
      bun: { type: "string" },
      "compare-server": { type: "string" },
      baseline: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  const instances = positiveInt("instances", values.instances)!;
  if (instances > MAX_INSTANCES) {
    throw new Error(`Cannot read --instances: at most ${MAX_INSTANCES}, got ${instances}`);
  }
  const multi = instances > 1;
  const scenarioText = values.scenario ?? (multi ? INSTANCE_SCENARIOS.join(",") : "all");
  const known: readonly string[] = [...SCENARIOS, ...LARGE_ROOM_SCENARIOS];
  const scenarios = scenarioText === "all"
    ? [...(multi ? INSTANCE_SCENARIOS : SCENARIOS)]
    : scenarioText.split(",").flatMap((s): ScenarioName[] => {
      if (s === "large-room") return [...LARGE_ROOM_SCENARIOS];
      if (!known.includes(s)) {
        throw new Error(
          `Cannot read --scenario: expected ${known.join(", ")}, large-room or all, got "${s}"`,
        );
      }
      return [s as ScenarioName];
    });
  if (multi) {
    const other = scenarios.find((s) => !INSTANCE_SCENARIOS.includes(s));
    if (other) {
      throw new Error(
        `Cannot read --scenario: --instances ${instances} runs ${
          INSTANCE_SCENARIOS.join(" and ")
        } only, got "${other}"`,
      );
    }
    if (values.mode !== undefined || values.url !== undefined) {
      throw new Error(
        `Cannot read --instances: it starts its own servers and compares them with one instance; ` +
          "drop --mode and --url",
      );
    }
  }
  const mode = values.mode ?? "both";
  const modes: ("naive" | "server")[] | undefined = mode === "both"
    ? ["naive", "server"]
    : mode === "naive" || mode === "server"
    ? [mode]
    : undefined;
  if (!modes) {
    throw new Error(`Cannot read --mode: expected server, naive or both, got "${mode}"`);
  }
  if (values.url && !/^wss?:\/\//.test(values.url)) {
    throw new Error(`Cannot read --url: expected ws://host:port/ws, got "${values.url}"`);
  }
  const rates = values.rate?.split(",").map((r) => positiveInt("rate", r)!);
  const duration = values.duration === undefined ? undefined : Number(values.duration);
  const churnPct = values.churn === undefined ? undefined : Number(values.churn);
  if (churnPct !== undefined && !(churnPct > 0)) {
    throw new Error(`Cannot read --churn: expected a percentage > 0, got "${values.churn}"`);
  }
  if (duration !== undefined && !(duration > 0)) {
    throw new Error(`Cannot read --duration: expected seconds > 0, got "${values.duration}"`);
  }
  if (values.io !== undefined && values.io !== "epoll" && values.io !== "deno") {
    throw new Error(`Cannot read --io: expected epoll or deno, got "${values.io}"`);
  }
  const io = values.io ?? (epollAvailable() ? "epoll" : "deno");
  // Every client comes from 127.0.0.1, so the per-address limits must be off as well; the pending
  // and memory limits too, since the capacity steps open thousands of sockets at once.
  const serverArgs = [
    "--rate-limit",
    "off",
    "--max-connections",
    "20000",
    "--max-connections-per-ip",
    "0",
    "--max-pending-per-ip",
    "0",
    "--max-pending-connections",
    "20000",
    "--memory-limit",
    "0",
    "--handshake-rate",
    "off",
  ];
  const queue = positiveInt("send-queue-bytes", values["send-queue-bytes"]);
  if (queue) serverArgs.push("--send-queue-bytes", String(queue));
  if (multi && (values.bun !== undefined || values["compare-server"] !== undefined)) {
    throw new Error(
      "Cannot read --instances: it compares instances only; drop --bun and " +
        "--compare-server",
    );
  }
  const compareRoot = values["compare-server"];
  let compare: Options["compare"];
  if (compareRoot !== undefined) {
    try {
      Deno.statSync(`${compareRoot}/main.ts`);
    } catch {
      throw new Error(`Cannot read --compare-server: no main.ts in "${compareRoot}"`);
    }
    compare = {
      root: compareRoot,
      label: `server@${shortCommit(compareRoot)}`,
      known: flagsKnownTo(compareRoot),
    };
  }
  if (values.bun !== undefined) {
    try {
      Deno.statSync(values.bun);
    } catch {
      throw new Error(`Cannot read --bun: no file "${values.bun}"`);
    }
  }
  const quietWait = Number(
    values["quiet-wait"] ?? (multi ? INSTANCES_QUIET_WAIT_S : DEFAULT_QUIET_WAIT_S),
  );
  return {
    scenarios,
    modes,
    instances,
    url: values.url,
    pid: positiveInt("pid", values.pid),
    quick: values.quick,
    clients: positiveInt("clients", values.clients),
    rates,
    durationS: duration,
    openRate: positiveInt("open-rate", values["open-rate"]),
    churnPerMin: churnPct === undefined ? undefined : churnPct / 100,
    workers: positiveInt("workers", values.workers) ?? DEFAULT_WORKERS,
    textBytes: positiveInt("text-bytes", values["text-bytes"]),
    serverArgs,
    data: values.data,
    pin: !values["no-pin"],
    io,
    repeat: positiveInt("repeat", values.repeat) ?? 1,
    quietWaitS: quietWait >= 0 ? quietWait : 0,
    json: values.json,
    bun: values.bun,
    compare,
    baseline: values.baseline ?? (multi ? BASELINE_LABEL : "naive"),
  };
}

/** `bun --version`, or "unknown". */
function bunVersion(bun: string): string {
  const out = new Deno.Command(bun, { args: ["--version"], stdout: "piped", stderr: "null" })
    .outputSync();
  return out.success ? new TextDecoder().decode(out.stdout).trim() : "unknown";
}

/** The short commit of the checkout at `dir`, or its directory name when git cannot tell. */
function shortCommit(dir: string): string {
  const out = new Deno.Command("git", {
    args: ["-C", dir, "rev-parse", "--short", "HEAD"],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  const commit = new TextDecoder().decode(out.stdout).trim();
  return out.success && commit ? commit : dir.split("/").filter(Boolean).at(-1) ?? dir;
}

/** Pins this process (every thread, and so every later child) to `core`. */
async function pinSelf(core: number): Promise<boolean> {
  const out = await new Deno.Command("taskset", {
    args: ["-a", "-p", "-c", String(core), String(Deno.pid)],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => undefined);
  return out?.success ?? false;
}

const encoder = new TextEncoder();
const isTerminal = Deno.stderr.isTerminal();
let lastProgress = 0;
function progress(line: string): void {
  if (isTerminal) {
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${line.slice(0, 160)}`));
  } else if (performance.now() - lastProgress > 2000) {
    // Logs get one line every 2 s instead of a carriage-return storm.
    lastProgress = performance.now();
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  }
}
function endProgress(): void {
  if (isTerminal) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
}

function pct(share: number): string {
  return `${(share * 100).toFixed(0)}%`;
}

/** Busy share of each core over one second. */
async function backgroundLoad(): Promise<number[]> {
  const meter = new CoreMeter();
  await sleep(1000);
  return meter.read().map((c) => c.busy);
}

/**
 * Waits until every core is quiet for a second, or `budgetMs` runs out; returns the last
 * second's busy shares. Other jobs on a shared machine distort latency far more than anything
 * the bench does, so each scenario starts in a quiet moment when there is one.
 */
async function waitForQuiet(budgetMs: number, progress: (line: string) => void): Promise<number[]> {
  const until = performance.now() + budgetMs;
  while (true) {
    const busy = await backgroundLoad();
    if (busy.every((b) => b < QUIET_CORE_BUSY) || performance.now() >= until) return busy;
    progress(`waiting for a quiet machine (cores ${busy.map(pct).join(" / ")} busy)`);
  }
}

/** The targets each scenario runs against, in order (repeats alternate them). */
function targetSpecs(opts: Options): TargetSpec[] {
  if (opts.url) return [{ kind: "url", url: opts.url, pid: opts.pid }];
  const embedded = [...opts.serverArgs, "--data", opts.data];
  if (opts.instances > 1) {
    // The baseline first; Redis alone, then Redis and the extra instances, so the report shows
    // what each costs.
    return [
      { kind: "server", args: embedded, label: BASELINE_LABEL },
      { kind: "server", args: opts.serverArgs, redis: true, label: ONE_REDIS_LABEL },
      {
        kind: "server",
        args: opts.serverArgs,
        redis: true,
        instances: opts.instances,
        label: manyRedisLabel(opts.instances),
      },
    ];
  }
  const specs: TargetSpec[] = opts.modes.map((kind) => ({
    kind,
    args: kind === "server" ? embedded : [],
  }));
  if (opts.bun) specs.push({ kind: "bun", args: [], source: { bun: opts.bun } });
  if (opts.compare) {
    specs.push({
      kind: "server",
      // An older checkout refuses flags added since (e.g. the pending limits): they are left out.
      args: withKnownFlags(embedded, opts.compare.known),
      label: opts.compare.label,
      source: { root: opts.compare.root },
    });
  }
  return specs;
}

/** The flags another checkout's server lists in its --help. */
function flagsKnownTo(root: string): Set<string> {
  const out = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}/main.ts`, "--help"],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  return new Set(new TextDecoder().decode(out.stdout).match(/--[a-z][a-z-]*/g) ?? []);
}

/** `args` without the flags (and their values) that `known` does not hold. */
export function withKnownFlags(args: readonly string[], known: ReadonlySet<string>): string[] {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = args[i].startsWith("--") ? args[i].split("=")[0] : null;
    const takesValue = flag !== null && !args[i].includes("=") && i + 1 < args.length &&
      !args[i + 1].startsWith("--");
    if (flag !== null && !known.has(flag)) {
      if (takesValue) i++;
      continue;
    }
    kept.push(args[i]);
    if (takesValue) kept.push(args[++i]);
  }
  return kept;
}

/** `spec` with its `--data` pointed at `file` (the real server only). */
function onDisk(spec: TargetSpec, file: string): TargetSpec {
  if (spec.kind === "url") return spec;
  const args = [...spec.args];
  const at = args.lastIndexOf("--data");
  if (at >= 0) args[at + 1] = file;
  else args.push("--data", file);
  return { ...spec, args };
}

/** "1 load-generator process", "2 load-generator processes". */
function generators(n: number): string {
  return `${n} load-generator process${n === 1 ? "" : "es"}`;
}

/** How a started target was launched, for the report's notes. */
function startedAs(spec: TargetSpec, target: Target, place: Placement): string {
  if (spec.kind === "url") return `given as ${spec.url}`;
  const pin = place.serverCore === undefined ? "" : `taskset -c ${place.serverCore} `;
  const redisArgs = target.redis ? ` --redis ${target.redis.url}` : "";
  const count = target.servers.length > 1 ? `${target.servers.length} × ` : "";
  const [exe, ...rest] = serverCommand(spec.kind, spec.source);
  const program = spec.kind === "bun" ? exe : "deno";
  const where = spec.source?.root ? ` (in ${spec.source.root})` : "";
  const server = `${count}${pin}${program} ${rest.join(" ")} --port 0 ${spec.args.join(" ")}`
    .trimEnd() + redisArgs + where;
  const pids = target.servers.map((p) => p.pid).join(", ");
  return target.redis
    ? `started as: ${target.redis.command} (pid ${target.redis.pid}), then ${server} (pid ${pids})`
    : `started as: ${server} (pid ${pids})`;
}

const open = new Set<Target>();

async function closeAll(): Promise<void> {
  await Promise.all([...open].map((t) => t.close()));
  open.clear();
}

async function main(): Promise<number> {
  let options: Options | "help";
  try {
    options = parseOptions(Deno.args);
  } catch (e) {
    console.error(`${e instanceof Error ? e.message : e}\n\n${HELP}`);
    return 2;
  }
  if (options === "help") {
    console.log(HELP);
    return 0;
  }
  const opts = options;
  let redisVersion: string | null = null;
  if (opts.instances > 1) {
    redisVersion = await redisServerVersion();
    if (redisVersion === null) {
      console.error("Cannot run --instances: redis-server not found on PATH");
      return 2;
    }
  }
  if (!opts.url && opts.modes.includes("server")) {
    try {
      Deno.statSync(new URL("../main.ts", import.meta.url));
    } catch {
      console.error("Cannot run the real server: main.ts not found (try --mode naive)");
      return 2;
    }
  }

  const machine = machineInfo();
  const pinned = opts.pin && machine.cpus >= 2 && await pinSelf(LOAD_CORE);
  const place: Placement = {
    serverCore: pinned ? SERVER_CORE : undefined,
    loadCore: pinned ? LOAD_CORE : undefined,
    workers: opts.workers,
    maxLifetimeS: RUN_TIME_LIMIT_S + 60,
    io: opts.io,
  };

  const stopEverything = async (why: string, code: number) => {
    endProgress();
    console.error(`bench: ${why}; stopping`);
    await closeAll();
    Deno.exit(code);
  };
  const watchdog = setTimeout(
    () => stopEverything(`time limit of ${RUN_TIME_LIMIT_S} s reached`, 3),
    RUN_TIME_LIMIT_S * 1000,
  );
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stopEverything(`got ${signal}`, 130));
  }

  // Whatever else runs on the machine shows up here, before the bench adds its own load.
  const idleCores = (await backgroundLoad()).map((busy, i) => `core ${i} ${pct(busy)}`);

  const header = [
    "# Chat server benchmark",
    "",
    `- machine: ${machine.cpus} CPUs, ${machine.model}, ${machine.memory} RAM, Linux ${machine.kernel}`,
    `- background load in the second before the run: ${idleCores.join(", ")} busy`,
    `- runtime: Deno ${Deno.version.deno}, V8 ${Deno.version.v8}` +
    (opts.bun ? `; Bun ${bunVersion(opts.bun)} (${opts.bun})` : ""),
    pinned
      ? `- placement: ${
        opts.instances > 1
          ? `every server instance and redis-server pinned to core ${SERVER_CORE} together`
          : "server pinned to core " + SERVER_CORE
      } (taskset -c ${SERVER_CORE}); ` +
        `${generators(opts.workers)} (${opts.io} sockets) and this orchestrator ` +
        `pinned to core ${LOAD_CORE} (taskset -c ${LOAD_CORE})`
      : `- placement: not pinned (fewer than 2 CPUs, --no-pin, or taskset failed); ` +
        `${generators(opts.workers)} (${opts.io} sockets)`,
    opts.url
      ? `- target: ${opts.url}${
        opts.pid ? ` (pid ${opts.pid})` : " (no pid: no CPU or memory figures)"
      }`
      : opts.instances > 1
      ? `- targets: ${
        targetSpecs(opts).map((t) => t.kind === "url" ? t.url : t.label).join(", ")
      }` +
        ` (baseline: ${BASELINE_LABEL} with --data ${opts.data}); Redis ${redisVersion}, ` +
        "private, on a free 127.0.0.1 port, no persistence, fresh for each target; " +
        `real server args: ${opts.serverArgs.join(" ")}`
      : `- targets: ${
        targetSpecs(opts).map((t) => t.kind === "url" ? t.url : t.label ?? t.kind).join(", ")
      } (ratios against ${opts.baseline}); real server args: ${opts.serverArgs.join(" ")} ` +
        `--data ${opts.data}`,
    `- texts: ${
      opts.textBytes ?? `${DEFAULT_TEXT_BYTES} (slow: ${SLOW_TEXT_BYTES})`
    } bytes, each stamped with its send time; latency = receive − send ` +
    "on one machine clock",
    `- command: deno task bench ${Deno.args.join(" ")}`.trimEnd(),
    "",
  ].join("\n");
  console.log(header);

  const quietDeadline = performance.now() + opts.quietWaitS * 1000;
  const tag = Math.random().toString(36).slice(2, 6);
  const all: ScenarioResult[] = [];
  let failures = 0;
  for (const scenario of opts.scenarios) {
    const specs = targetSpecs(opts);
    const results: ScenarioResult[] = [];
    // Repeats alternate the targets, so slow drifts in background load hit both alike.
    const runs = Array.from({ length: opts.repeat }, (_, r) => specs.map((spec) => ({ spec, r })))
      .flat();
    for (const { spec: given, r } of runs) {
      const largeRoom = (LARGE_ROOM_SCENARIOS as readonly string[]).includes(scenario);
      // The large rooms measure the real server: the baselines have no since, history or store.
      if (largeRoom && given.kind !== "server" && given.kind !== "url") continue;
      const dataFile = scenario === "reconnect-storm" && given.kind === "server"
        ? await Deno.makeTempFile({ prefix: "chat-bench-", suffix: ".db" })
        : undefined;
      // The restart must find the room's history again: the same data, on disk.
      const spec = dataFile ? onDisk(given, dataFile) : given;
      const name = spec.kind === "url" ? spec.kind : spec.label ?? spec.kind;
      const label = `${scenario} · ${name}${opts.repeat > 1 ? ` #${r + 1}` : ""}`;
      let target: Target | undefined;
      try {
        const quietBudget = Math.max(0, quietDeadline - performance.now());
        const background = await waitForQuiet(quietBudget, (line) => progress(`${label}: ${line}`));
        progress(`${label}: starting`);
        target = await Target.open(spec, place);
        open.add(target);
        const result = await runScenario(scenario, target, {
          quick: opts.quick,
          clients: opts.clients,
          rates: opts.rates,
          durationS: opts.durationS,
          openRate: opts.openRate,
          churnPerMin: opts.churnPerMin,
          textBytes: opts.textBytes,
          tag: `${tag}${all.length + results.length}`,
        }, (line) => progress(`${label} · ${line}`));
        result.notes.unshift(
          `background load just before: ${
            background.map((b, i) => `core ${i} ${pct(b)}`).join(", ")
          }`,
        );
        if (spec.kind !== "url") result.notes.unshift(startedAs(spec, target, place));
        for (const [i, server] of target.servers.entries()) {
          const which = target.servers.length > 1 ? ` (instance ${i + 1})` : "";
          const health = JSON.stringify(await server.healthz()).slice(0, 400);
          result.notes.push(`/healthz after the run${which}: ${health}`);
          const metrics = await server.metrics();
          if (metrics) result.notes.push(`/metrics after the run${which}: ${metrics}`);
        }
        results.push(result);
      } catch (e) {
        failures++;
        endProgress();
        console.error(`bench: ${label} failed: ${e instanceof Error ? e.message : e}`);
        for (const server of target?.servers ?? []) console.error(server.output().slice(-2000));
      } finally {
        if (target) {
          await target.close();
          open.delete(target);
        }
        if (dataFile) {
          for (const suffix of ["", "-wal", "-shm", "-journal"]) {
            await Deno.remove(dataFile + suffix).catch(() => {});
          }
        }
      }
    }
    endProgress();
    all.push(...results);
    const combined = [...new Set(results.map((x) => x.target))]
      .map((t) => combineRepeats(results.filter((x) => x.target === t)));
    if (combined.length) {
      console.log(scenarioSection(combined, opts.baseline));
    }
  }
  clearTimeout(watchdog);
  if (opts.json) {
    await Deno.writeTextFile(opts.json, JSON.stringify({ header, results: all }, null, 2));
  }
  return failures === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
