/**
 * Child processes the bench owns: the server under test, pinned to one core, the load
 * generators, pinned to another, and (two-instance mode) a private Redis beside the servers.
 * Servers and generators raise their file limit to the hard limit first (`ulimit -n` is per
 * process and children inherit it, so the shell does it before `exec`).
 */

import type { Reply, RequestBody } from "./control.ts";
import { V8_FLAGS } from "../ops/config.ts";
import { onFreePort, spawnRedisServer } from "../scripts/redis_process.ts";
import {
  MAX_SLOW_CONSUMER_EVENTS,
  parseSlowConsumer,
  type SlowConsumerEvent,
} from "./server_events.ts";

const BENCH_DIR = new URL("./", import.meta.url);
const ROOT_DIR = new URL("../", import.meta.url);
/** How long a server may take to print its Listening line, in ms. */
export const SERVER_START_TIMEOUT_MS = 30_000;
/** How long a server gets to exit after SIGTERM before SIGKILL, in ms. */
export const SERVER_STOP_GRACE_MS = 3_000;
/** Output kept from each child for error reports, in characters. */
const OUTPUT_TAIL_CHARS = 8_000;

/** Which server to start: the real one (main.ts), the naive baseline, or Bun's pub/sub. */
export type ServerKind = "server" | "naive" | "bun";

/** Where a server's code comes from, beyond its kind. */
export interface ServerSource {
  /** Checkout whose main.ts the real server runs (an older commit, to compare). @default this one */
  root?: string;
  /** The Bun executable, for kind "bun". */
  bun?: string;
}

/** Extra `deno run` flags from the environment, e.g. BENCH_SERVER_FLAGS="--cpu-prof". */
function extraFlags(variable: string): string[] {
  return (Deno.env.get(variable) ?? "").split(" ").filter((f) => f !== "");
}

/**
 * The `deno` arguments that start a server, before its own flags: the real server runs with the
 * V8 flags `deno task start` and the executables use; the naive baseline with V8's defaults, as a
 * first version would. Entries are relative to the project root (the children's working directory).
 */
export function serverDenoArgs(kind: "server" | "naive"): string[] {
  const entry = kind === "naive" ? "bench/naive_server.ts" : "main.ts";
  const runtime = kind === "naive" ? [] : [`--v8-flags=${V8_FLAGS.join(",")}`];
  return ["run", "-A", ...runtime, ...extraFlags("BENCH_SERVER_FLAGS"), entry];
}

/**
 * The command line (executable first, run in the project root) that starts a server of `kind`
 * from `source`, before the port and its own flags.
 */
export function serverCommand(kind: ServerKind, source: ServerSource = {}): string[] {
  if (kind === "bun") {
    if (!source.bun) throw new Error("Cannot start bun: no Bun executable given (--bun PATH)");
    return [source.bun, "run", new URL("bun_server.ts", BENCH_DIR).pathname];
  }
  const args = serverDenoArgs(kind);
  if (source.root && kind === "server") {
    args[args.length - 1] = new URL("main.ts", `file://${Deno.realPathSync(source.root)}/`)
      .pathname;
  }
  return [Deno.execPath(), ...args];
}

/**
 * Builds `sh -c 'ulimit -n <hard>; exec taskset -c CORE <command>…'` (taskset only if `core` set),
 * run in `cwd` (default the project root).
 */
function pinnedCommand(
  core: number | undefined,
  command: string[],
  stdin: "null" | "piped",
  cwd: string | URL = ROOT_DIR,
) {
  const script = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';
  const pin = core === undefined ? [] : ["taskset", "-c", String(core)];
  return new Deno.Command("sh", {
    args: ["-c", script, "sh", ...pin, ...command],
    cwd,
    stdin,
    stdout: "piped",
    stderr: "piped",
  });
}

/** Keeps the last few KB a stream printed, and reports each complete line to `onLine`. */
async function drain(
  stream: ReadableStream<Uint8Array>,
  keep: { text: string },
  onLine?: (line: string) => void,
): Promise<void> {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    keep.text = (keep.text + chunk).slice(-OUTPUT_TAIL_CHARS);
    if (!onLine) continue;
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  }
}

/** The server under test, running as a child process. */
export class ServerProcess {
  readonly kind: ServerKind;
  readonly pid: number;
  /** `ws://127.0.0.1:PORT/ws`. */
  readonly wsUrl: string;
  /** `http://127.0.0.1:PORT/`. */
  readonly httpUrl: string;
  #child: Deno.ChildProcess;
  #output: { text: string };
  #slowConsumers: SlowConsumerEvent[];
  /** How it was started, so `restart` starts it the same way (same flags, same data file). */
  #launch: { args: string[]; core?: number; source: ServerSource };

  private constructor(
    kind: ServerKind,
    child: Deno.ChildProcess,
    httpUrl: string,
    output: { text: string },
    slowConsumers: SlowConsumerEvent[],
    launch: { args: string[]; core?: number; source: ServerSource },
  ) {
    this.#slowConsumers = slowConsumers;
    this.#launch = launch;
    this.kind = kind;
    this.#child = child;
    this.pid = child.pid;
    this.httpUrl = httpUrl;
    this.wsUrl = httpUrl.replace(/^http/, "ws") + "ws";
    this.#output = output;
  }

  /**
   * Starts the server with `args` (the port is always 0) and waits for its Listening line. A
   * server from another checkout runs in that checkout, so its own relative paths hold.
   */
  static async start(
    kind: ServerKind,
    args: string[],
    core?: number,
    source: ServerSource = {},
  ): Promise<ServerProcess> {
    const command = [...serverCommand(kind, source), "--port", "0", ...args];
    const cwd = source.root && kind === "server" ? source.root : ROOT_DIR;
    const child = pinnedCommand(core, command, "null", cwd).spawn();
    const output = { text: "" };
    const slowConsumers: SlowConsumerEvent[] = [];
    let resolveUrl: (url: string) => void = () => {};
    const url = new Promise<string>((resolve) => resolveUrl = resolve);
    const onLine = (line: string) => {
      const match = line.match(/Listening on (http:\/\/\S+\/)/);
      if (match) resolveUrl(match[1]);
      const slow = parseSlowConsumer(line);
      if (slow && slowConsumers.length < MAX_SLOW_CONSUMER_EVENTS) slowConsumers.push(slow);
    };
    drain(child.stdout, output, onLine).catch(() => {});
    drain(child.stderr, output, onLine).catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const httpUrl = await Promise.race([
        url,
        child.status.then((s) => {
          throw new Error(`Cannot start ${kind}: it exited with ${s.code}\n${output.text}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`Cannot start ${kind}: no Listening line\n${output.text}`)),
            SERVER_START_TIMEOUT_MS,
          );
        }),
      ]);
      return new ServerProcess(kind, child, httpUrl, output, slowConsumers, {
        args,
        core,
        source,
      });
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Every `slow_consumer` line the server logged so far (up to MAX_SLOW_CONSUMER_EVENTS). */
  get slowConsumers(): readonly SlowConsumerEvent[] {
    return this.#slowConsumers;
  }

  /** The tail of what the server printed. */
  output(): string {
    return this.#output.text;
  }

  /** GET /healthz as JSON, or an error string. */
  async healthz(): Promise<unknown> {
    try {
      const res = await fetch(new URL("healthz", this.httpUrl), {
        signal: AbortSignal.timeout(5_000),
      });
      return await res.json();
    } catch (e) {
      return `Cannot read /healthz: ${e instanceof Error ? e.message : e}`;
    }
  }

  /**
   * The plain counters and gauges of GET /metrics (Prometheus text, histogram buckets left out)
   * on one line, or "" when the server has no such endpoint.
   */
  async metrics(): Promise<string> {
    try {
      const res = await fetch(new URL("metrics", this.httpUrl), {
        signal: AbortSignal.timeout(5_000),
      });
      if (!res.ok) {
        await res.body?.cancel();
        return "";
      }
      return (await res.text()).split("\n")
        .filter((l) => l && !l.startsWith("#") && !/_bucket\{|_sum |_count /.test(l))
        .join(", ");
    } catch {
      return "";
    }
  }

  /** SIGTERM, then SIGKILL after a grace period; safe to call twice. */
  async stop(): Promise<void> {
    await terminate(this.#child);
  }

  /**
   * Stops this server and starts a new one the same way (same flags, so the same data file) on a
   * new port: a restart as an operator does it. This object is stopped afterwards.
   */
  async restart(): Promise<ServerProcess> {
    await this.stop();
    const { args, core, source } = this.#launch;
    return await ServerProcess.start(this.kind, args, core, source);
  }
}

/** A reply on a child's stdout: `ok` with the request's `id`, or an error. */
type LineReply = { id: number; ok: true } | { id: number; ok: false; error: string };

/**
 * A bench child process driven by request/reply lines: one JSON request per line on its stdin
 * (numbered with `id` here), one reply per request on its stdout with the same `id`. Its stderr
 * is copied to ours. `Body` is a request before numbering; `Ok` its successful reply.
 */
export class LineChild<Body extends { cmd: string }, Ok extends { id: number; ok: true }> {
  readonly pid: number;
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #nextId = 1;
  #waiting = new Map<number, (reply: Ok | Extract<LineReply, { ok: false }>) => void>();
  #output = { text: "" };
  #exited = false;

  /** Starts `deno run -A <flags> bench/<entry> <args…>`, pinned to `core` when set. */
  constructor(entry: string, args: string[], core: number | undefined) {
    const path = new URL(entry, BENCH_DIR).pathname;
    const flags = extraFlags("BENCH_LOADGEN_FLAGS");
    this.#child = pinnedCommand(
      core,
      [Deno.execPath(), "run", "-A", ...flags, path, ...args],
      "piped",
    )
      .spawn();
    this.pid = this.#child.pid;
    this.#writer = this.#child.stdin.getWriter();
    drain(this.#child.stdout, { text: "" }, (line) => {
      const reply = JSON.parse(line) as Ok | Extract<LineReply, { ok: false }>; // our own child
      this.#waiting.get(reply.id)?.(reply);
      this.#waiting.delete(reply.id);
    }).catch(() => {});
    drain(this.#child.stderr, this.#output, (line) => console.error(line)).catch(() => {});
    this.#child.status.then(() => {
      this.#exited = true;
      for (const [id, resolve] of this.#waiting) {
        resolve({ id, ok: false, error: `${entry} exited\n${this.#output.text}` });
      }
      this.#waiting.clear();
    });
  }

  /** Sends one request and waits for its reply; throws on an error reply or timeout. */
  async request(body: Body, timeoutMs = 10_000): Promise<Ok> {
    if (this.#exited) throw new Error(`Cannot send ${body.cmd}: the child process exited`);
    const id = this.#nextId++;
    const reply = new Promise<Ok | Extract<LineReply, { ok: false }>>((resolve) =>
      this.#waiting.set(id, resolve)
    );
    await this.#writer.write(new TextEncoder().encode(JSON.stringify({ ...body, id }) + "\n"));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Cannot ${body.cmd}: no reply within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const r = await Promise.race([reply, timeout]);
      if (!r.ok) throw new Error(`Cannot ${body.cmd}: ${r.error}`);
      return r;
    } finally {
      clearTimeout(timer);
      this.#waiting.delete(id);
    }
  }

  /** Sends `exit`, then kills the process if it lingers; safe to call twice. */
  async stop(exit: Body): Promise<void> {
    if (!this.#exited) {
      await this.request(exit, 2_000).catch(() => {});
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited */ }
    }, 2_000);
    await this.#child.status;
    clearTimeout(timer);
    try {
      this.#writer.releaseLock();
    } catch { /* already released */ }
  }
}

/** One load-generator process (bench/loadgen.ts), driven by request/reply lines. */
export class LoadGenerator {
  #child: LineChild<RequestBody, Extract<Reply, { ok: true }>>;

  constructor(core: number | undefined, maxLifetimeS: number, io: "epoll" | "deno") {
    this.#child = new LineChild("loadgen.ts", [String(maxLifetimeS), io], core);
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Sends one request and waits for its reply; throws on an error reply or timeout. */
  request(body: RequestBody, timeoutMs = 10_000): Promise<Extract<Reply, { ok: true }>> {
    return this.#child.request(body, timeoutMs);
  }

  /** Asks the process to exit, then kills it if it lingers; safe to call twice. */
  stop(): Promise<void> {
    return this.#child.stop({ cmd: "exit" });
  }
}

/**
 * A private, throwaway `redis-server` for the two-instance mode: a free port on 127.0.0.1, its
 * own temporary directory, no persistence (`--save "" --appendonly no`), optionally pinned to a
 * core. Started by scripts/redis_process.ts, as the tests' Redis is; the bench keeps the pid for
 * CPU figures.
 */
export class RedisProcess {
  readonly pid: number;
  readonly port: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  /** The command line, for the report. */
  readonly command: string;
  #child: Deno.ChildProcess;
  #dir: string;
  #stopped = false;

  private constructor(child: Deno.ChildProcess, port: number, dir: string, command: string) {
    this.#child = child;
    this.pid = child.pid;
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.#dir = dir;
    this.command = command;
  }

  /** Starts redis-server (under `taskset -c core` when `core` is set) and waits for PONG. */
  static async start(core?: number): Promise<RedisProcess> {
    const dir = await Deno.makeTempDir({ prefix: "chat-bench-redis-" });
    try {
      return await onFreePort(async (port) => {
        const { child, command } = await spawnRedisServer({ port, dir, core });
        return new RedisProcess(child, port, dir, command);
      });
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
  }

  /** SIGTERM (SIGKILL after a grace period), then removes its directory; safe to call twice. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await terminate(this.#child);
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}

/** SIGTERM, then SIGKILL after SERVER_STOP_GRACE_MS; resolves once the child has exited. */
async function terminate(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* already exited */ }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
  }, SERVER_STOP_GRACE_MS);
  await child.status;
  clearTimeout(timer);
}
