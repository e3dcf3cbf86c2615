/**
 * Test helpers shared by every suite: run the real server as a child process, and a small
 * WebSocket client that splits batched frames into messages and waits for the ones a test expects.
 */

const ROOT = new URL("../", import.meta.url);

/** How long {@linkcode SpawnedServer.stop} waits for the process to exit, in ms. */
export const STOP_WAIT_MS = 15_000;

/** A server child process and the address it printed. */
export interface SpawnedServer {
  /** `http://127.0.0.1:PORT/` (or https://) as printed on the Listening line. */
  url: string;
  port: number;
  /** `ws://127.0.0.1:PORT/ws`. */
  wsUrl: string;
  process: Deno.ChildProcess;
  /** Everything the server printed so far on stdout and stderr. */
  output(): string;
  /**
   * Sends a signal and waits for exit, at most {@linkcode STOP_WAIT_MS}; returns the exit code.
   * A server still running then is killed with SIGKILL and the call rejects.
   */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** Options for {@linkcode spawnServer}. */
export interface SpawnOptions {
  /** Deno permission flags. @default ["-A"] */
  permissions?: string[];
  /** Working directory. @default the repository root */
  cwd?: string | URL;
  env?: Record<string, string>;
  /** How long to wait for the Listening line, in ms. @default 15000 */
  startTimeoutMs?: number;
}

/**
 * Starts `main.ts` with `args` (add `--port 0` yourself) and resolves once it is listening. Without
 * a `--data` argument the server keeps history in memory.
 */
export async function spawnServer(
  args: string[],
  options: SpawnOptions = {},
): Promise<SpawnedServer> {
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(options.permissions ?? ["-A"]),
      new URL("main.ts", ROOT).pathname,
      // Tests never share the default chat.db in the working directory.
      ...(args.some((a) => a === "--data" || a.startsWith("--data="))
        ? []
        : ["--data", ":memory:"]),
      ...args,
    ],
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const process = command.spawn();
  let text = "";
  const decoder = new TextDecoder();
  let resolveLine: (line: string) => void;
  const line = new Promise<string>((r) => resolveLine = r);
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      const m = text.match(/Listening on (\S+)/);
      if (m) resolveLine(m[1]);
    }
  };
  const pumps = Promise.all([pump(process.stdout), pump(process.stderr)]);
  const status = process.status;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Cannot start server: no Listening line within timeout\n${text}`)),
      options.startTimeoutMs ?? 15_000,
    );
  });
  const exited = status.then((s) => {
    throw new Error(`Cannot start server: it exited with ${s.code}\n${text}`);
  });
  let url: string;
  try {
    url = await Promise.race([line, timeout, exited]);
  } catch (e) {
    try {
      process.kill("SIGKILL");
    } catch { /* already gone */ }
    await status;
    await pumps;
    throw e;
  } finally {
    clearTimeout(timer);
  }
  exited.catch(() => {}); // a later exit is reported by stop(), not as an unhandled rejection
  const port = Number(new URL(url).port);
  const wsUrl = url.replace(/^http/, "ws") + "ws";
  let stopped: Promise<number> | undefined;
  return {
    url,
    port,
    wsUrl,
    process,
    output: () => text,
    stop(signal: Deno.Signal = "SIGTERM") {
      stopped ??= (async () => {
        try {
          process.kill(signal);
        } catch { /* already exited */ }
        try {
          return (await within(`the server to exit on ${signal}`, status, STOP_WAIT_MS)).code;
        } catch (e) {
          // Still running: kill it so nothing outlives the test, then fail saying so.
          try {
            process.kill("SIGKILL");
          } catch { /* exited meanwhile */ }
          await status;
          throw new Error(`${e instanceof Error ? e.message : e}; killed it\n${text}`);
        } finally {
          await pumps;
        }
      })();
      return stopped;
    },
  };
}

/** One JSON message the server sent. */
// deno-lint-ignore no-explicit-any
export type Msg = Record<string, any>;

/** A WebSocket test client that records every message and can wait for one matching a predicate. */
export class TestClient {
  readonly socket: WebSocket;
  /** Every message received, in order, batches split. */
  readonly messages: Msg[] = [];
  /** How many frames arrived (a frame may carry several messages). */
  frames = 0;
  #waiters: { match: (m: Msg) => boolean; resolve: (m: Msg) => void; from: number }[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  /** How the server closed the socket, once it has: said in a wait's timeout error. */
  #closedWith: string | null = null;

  constructor(url: string, protocolsOrOptions?: { headers?: Record<string, string> }) {
    // Deno accepts headers on the client constructor; browsers do not.
    this.socket = protocolsOrOptions
      ? new WebSocket(url, protocolsOrOptions as unknown as string[])
      : new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.socket.addEventListener("open", () => resolve(), { once: true });
      this.socket.addEventListener("error", () => reject(new Error("Cannot connect")), {
        once: true,
      });
      this.socket.addEventListener("close", () => reject(new Error("Cannot connect: closed")), {
        once: true,
      });
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) =>
      this.socket.addEventListener("close", resolve, { once: true })
    );
    this.socket.addEventListener("close", (e) => {
      this.#closedWith = `${e.code} ${JSON.stringify(e.reason)}`;
    }, { once: true });
    this.socket.addEventListener("message", (e) => {
      if (typeof e.data !== "string") return;
      this.frames++;
      for (const line of e.data.split("\n")) {
        const m = JSON.parse(line) as Msg;
        this.messages.push(m);
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.match(m)) return true;
          w.resolve(m);
          return false;
        });
      }
    });
  }

  /** Opens a client, sends hello, and waits for welcome. */
  static async connect(wsUrl: string, name: string, extra: Msg = {}): Promise<TestClient> {
    const c = new TestClient(wsUrl);
    await within("the WebSocket upgrade", c.opened, CLOSE_WAIT_MS);
    c.send({ type: "hello", name, ...extra });
    await c.waitFor((m) => m.type === "welcome");
    return c;
  }

  send(msg: Msg | string): void {
    this.socket.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  /** Resolves with the first message matching `match` received after `from` (default: any so far). */
  waitFor(match: (m: Msg) => boolean, timeoutMs = 5000, from = 0): Promise<Msg> {
    const seen = this.messages.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        const closed = this.#closedWith === null ? "" : `; the socket closed ${this.#closedWith}`;
        reject(
          new Error(`Timed out waiting; got ${JSON.stringify(this.messages.slice(-5))}${closed}`),
        );
      }, timeoutMs);
      const done = (m: Msg) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.#waiters.push({ match, resolve: done, from });
    });
  }

  /** Sends `msg` and waits for the next message matching `match`. */
  async request(msg: Msg, match: (m: Msg) => boolean): Promise<Msg> {
    const from = this.messages.length;
    this.send(msg);
    return await this.waitFor(match, 5000, from);
  }

  /** Closes (if open) and waits for the close event, at most {@linkcode CLOSE_WAIT_MS}. */
  async close(): Promise<CloseEvent> {
    if (this.socket.readyState === WebSocket.CONNECTING) {
      await within("the socket to open or fail", this.opened, CLOSE_WAIT_MS).catch(() => {});
    }
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close();
    return await within("the close handshake this client started", this.closed, CLOSE_WAIT_MS);
  }
}

/** How long a test waits for a socket to close before it fails, in ms. */
export const CLOSE_WAIT_MS = 5000;

/**
 * Resolves as `promise` does, or rejects with "Timed out after MS ms waiting for WHAT" once `ms`
 * have passed: every wait in a test has a bound, so a server that wrongly keeps a socket open (or
 * never answers) fails the test instead of hanging the suite. The timer is cleared either way, so
 * leak checks stay quiet.
 */
export function within<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Waits at most `ms` (default {@linkcode CLOSE_WAIT_MS}) for the server to close `client`'s
 * socket; rejects saying so, with the last messages it got, when the socket is still open.
 */
export function closedWithin(
  client: TestClient,
  ms: number = CLOSE_WAIT_MS,
  what = "the server to close the socket",
): Promise<CloseEvent> {
  return within(what, client.closed, ms).catch((e) => {
    if (!(e instanceof Error) || !e.message.startsWith("Timed out")) throw e;
    const last = JSON.stringify(client.messages.slice(-5));
    throw new Error(
      `${e.message}; it is still open (state ${client.socket.readyState}), got ${last}`,
    );
  });
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 20 ms until it returns true; throws after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await sleep(20);
  }
}
