/**
 * Starts a private, throwaway `redis-server` for tests: a free loopback port, no persistence unless
 * asked for, its own temporary directory, and kill/restart for the "Redis goes away mid-stream"
 * tests.
 */

/** Options for {@linkcode startRedis}. */
export interface StartRedisOptions {
  /**
   * Keep data across `restart()` and `kill()`: an append-only file in the server's directory,
   * fsynced before every reply (`--appendonly yes --appendfsync always`), so whatever Redis
   * acknowledged survives. @default false (nothing kept: a restart starts empty)
   */
  persist?: boolean;
}

/** Options for {@linkcode TestRedis.restart}. */
export interface RestartOptions {
  /** How long Redis stays down between the stop and the start, in ms. @default 0 */
  downMs?: number;
}

/** A running test Redis. */
export interface TestRedis {
  /** `redis://127.0.0.1:PORT`. */
  url: string;
  port: number;
  /** Stops the server (SIGTERM) and removes its directory; safe to call twice. */
  stop(): Promise<void>;
  /** Kills the server (SIGKILL) without removing its directory, as a crash would. */
  kill(): Promise<void>;
  /**
   * Stops the server if it runs (SIGTERM) and starts it again on the same port and directory:
   * empty, or with its data when started with `persist`.
   */
  restart(options?: RestartOptions): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open and nothing answers, like a hung host. */
  pause(): void;
  /** Lets a paused server go on (SIGCONT); it then answers everything sent meanwhile. */
  resume(): void;
}

/** How long a started server has to answer PING, in ms. */
const START_TIMEOUT_MS = 5000;
/** How often to try PING while it starts, in ms. */
const PING_INTERVAL_MS = 20;

/**
 * Starts `redis-server` on a free port of 127.0.0.1 and resolves once it answers PING; resolves
 * null when no `redis-server` is installed, so tests can skip.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis | null> {
  const persist = options.persist ?? false;
  if (!await hasRedisServer()) return null;
  const dir = await Deno.makeTempDir({ prefix: "chat-redis-test-" });
  let port = 0;
  let child: Deno.ChildProcess | null = null;
  // The free port is found by binding and closing it, so another process may take it before
  // redis-server binds; try a few ports before giving up.
  for (let attempt = 0; child === null; attempt++) {
    port = freePort();
    try {
      child = await spawnRedis(port, dir, persist);
    } catch (e) {
      if (attempt >= 2) {
        await Deno.remove(dir, { recursive: true });
        throw e;
      }
    }
  }
  let running: Deno.ChildProcess | null = child;
  let removed = false;

  const end = async (signal: Deno.Signal) => {
    if (running === null) return;
    const c = running;
    running = null;
    try {
      c.kill(signal);
      c.kill("SIGCONT"); // a paused server acts on SIGTERM only once it runs again
    } catch { /* already exited */ }
    await c.status;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await end("SIGTERM");
      if (!removed) {
        removed = true;
        await Deno.remove(dir, { recursive: true });
      }
    },
    kill: () => end("SIGKILL"),
    async restart(restartOptions: RestartOptions = {}) {
      if (removed) throw new Error("Cannot restart Redis: it was stopped for good");
      await end("SIGTERM");
      const downMs = restartOptions.downMs ?? 0;
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      running = await spawnRedis(port, dir, persist);
    },
    pause: () => running?.kill("SIGSTOP"),
    resume: () => running?.kill("SIGCONT"),
  };
}

async function hasRedisServer(): Promise<boolean> {
  try {
    const out = await new Deno.Command("redis-server", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return out.success;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Starts redis-server on `port` and waits until it answers PING; kills it if it never does. With
 * `persist` it keeps an append-only file in `dir` and loads it on start.
 */
async function spawnRedis(port: number, dir: string, persist: boolean): Promise<Deno.ChildProcess> {
  const logfile = `${dir}/redis-${port}.log`;
  const child = new Deno.Command("redis-server", {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      ...(persist ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]),
      "--dir",
      dir,
      "--logfile",
      logfile,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!exited && Date.now() < deadline) {
    if (await answersPing(port)) return child;
    await new Promise((r) => setTimeout(r, PING_INTERVAL_MS));
  }
  if (!exited) {
    child.kill("SIGKILL");
  }
  await child.status;
  const log = await Deno.readTextFile(logfile).catch(() => "(no log)");
  throw new Error(`Cannot start redis-server on port ${port}:\n${log.slice(-2000)}`);
}

/** True when something on `port` answers an inline PING with +PONG. */
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
