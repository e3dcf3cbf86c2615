/**
 * Starts a private, throwaway `redis-server` for tests: a free loopback port, no persistence unless
 * asked for, its own temporary directory, and kill/restart for the "Redis goes away mid-stream"
 * tests. Starting the process is scripts/redis_process.ts's job, shared with the bench.
 */
import { onFreePort, redisServerVersion, spawnRedisServer } from "../scripts/redis_process.ts";

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

/**
 * Starts `redis-server` on a free port of 127.0.0.1 and resolves once it answers PING; resolves
 * null when no `redis-server` is installed, so tests can skip.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis | null> {
  const persist = options.persist ?? false;
  if (await redisServerVersion() === null) return null;
  const dir = await Deno.makeTempDir({ prefix: "chat-redis-test-" });
  let port = 0;
  let child: Deno.ChildProcess;
  try {
    child = await onFreePort(async (p) => {
      const spawned = await spawnRedisServer({ port: p, dir, persist });
      port = p;
      return spawned.child;
    });
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
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
      running = (await spawnRedisServer({ port, dir, persist })).child;
    },
    pause: () => running?.kill("SIGSTOP"),
    resume: () => running?.kill("SIGCONT"),
  };
}
