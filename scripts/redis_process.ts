/**
 * Starts a private `redis-server` on a free loopback port and waits until it answers: one
 * implementation for the tests (tests/redis_server.ts: kill, restart, pause) and the bench
 * (bench/processes.ts: pinned to a core, its pid for CPU figures).
 *
 * Design: `spawnRedisServer` starts one process on a given port and directory and resolves once an
 * inline PING gets +PONG (or kills it and throws with the tail of its log); `onFreePort` retries
 * on another port when the one found free was taken before redis-server bound it.
 */

/** How long a started server has to answer PING, in ms. */
export const REDIS_START_TIMEOUT_MS = 5_000;
/** How often to try PING while it starts, in ms. */
const PING_INTERVAL_MS = 20;
/** Ports tried before giving up: a port found free may be taken before redis-server binds it. */
const PORT_ATTEMPTS = 3;

/** How to run one redis-server. */
export interface RedisSpawnOptions {
  port: number;
  /** Its working directory: the log, and the append-only file with `persist`. */
  dir: string;
  /**
   * Keep data across restarts: an append-only file fsynced before every reply
   * (`--appendonly yes --appendfsync always`). @default false (`--save "" --appendonly no`)
   */
  persist?: boolean;
  /** Pin it to this core with `taskset -c` (which execs it, so the pid is Redis's own). */
  core?: number;
}

/** A redis-server that answered PING. */
export interface SpawnedRedis {
  child: Deno.ChildProcess;
  /** The command line, with the directory shown as `$TMPDIR`, for reports. */
  command: string;
}

/** Starts redis-server as `options` say and resolves once it answers PING. */
export async function spawnRedisServer(options: RedisSpawnOptions): Promise<SpawnedRedis> {
  const { port, dir } = options;
  const logfile = `${dir}/redis-${port}.log`;
  const persistence = options.persist
    ? ["--appendonly", "yes", "--appendfsync", "always"]
    : ["--appendonly", "no"];
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence];
  const argv = [
    ...(options.core === undefined ? [] : ["taskset", "-c", String(options.core)]),
    "redis-server",
    ...args,
    "--dir",
    dir,
    "--logfile",
    logfile,
  ];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot start Redis: ${argv[0]} not found on PATH`);
    }
    throw e;
  }
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = performance.now() + REDIS_START_TIMEOUT_MS;
  while (!exited && performance.now() < deadline) {
    if (await answersPing(port)) {
      const command = argv.map((a) => a === "" ? "''" : a).join(" ").replaceAll(dir, "$TMPDIR");
      return { child, command };
    }
    await new Promise((r) => setTimeout(r, PING_INTERVAL_MS));
  }
  if (!exited) child.kill("SIGKILL");
  await child.status;
  const log = await Deno.readTextFile(logfile).catch(() => "(no log)");
  throw new Error(`Cannot start redis-server on port ${port}:\n${log.slice(-2000)}`);
}

/** Runs `start` with a free loopback port, trying another when that one was taken meanwhile. */
export async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await start(freePort());
    } catch (e) {
      if (attempt >= PORT_ATTEMPTS) throw e;
    }
  }
}

/** The installed redis-server's version ("7.0.15"), or null when there is none. */
export async function redisServerVersion(): Promise<string | null> {
  try {
    const out = await new Deno.Command("redis-server", {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return null;
    return new TextDecoder().decode(out.stdout).match(/v=(\S+)/)?.[1] ?? "unknown";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** True when something on `port` of 127.0.0.1 answers an inline PING with +PONG. */
async function answersPing(port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    // While loading, Redis answers -LOADING; only +PONG means ready.
    return n !== null && new TextDecoder().decode(buf.subarray(0, n)).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    conn?.close();
  }
}
