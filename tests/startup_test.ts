/**
 * `main.ts` starting up, as a process: every startup failure ends in one `Cannot start: …` line
 * naming the port or file and the fix, with no stack trace, and a signal at any instant of the
 * start stops the process promptly.
 */
import assert from "node:assert/strict";
import { damagePage, leafOf, ROOM_MESSAGES, writeHistory } from "./damaged_db.ts";
import { spawnServer, TestClient, within } from "./helpers.ts";
import { startRedis } from "./redis_server.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const SIGNALS_WORK = Deno.build.os !== "windows";
/** How long a server that must refuse to start may take to exit, in ms (a loaded CI machine). */
const REFUSAL_WAIT_MS = 15_000;
/** How long a server may take to exit after a signal sent during its start, in ms. */
const SIGNAL_EXIT_MS = 3_000;

/**
 * A child process running main.ts with `args`, its output collected. With `sigintIgnored` it
 * starts with SIGINT ignored, as a shell starts a background job (`deno task start &`): then only
 * a listener of its own can make SIGINT stop it.
 */
function spawnMain(
  args: string[],
  { sigintIgnored = false } = {},
): { child: Deno.ChildProcess; output: () => string } {
  const deno = [Deno.execPath(), "run", "-A", MAIN, ...args];
  const [command, ...rest] = sigintIgnored
    ? ["sh", "-c", `trap '' INT; exec "$@"`, "sh", ...deno]
    : deno;
  const child = new Deno.Command(command, {
    args: rest,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  void pump(child.stdout);
  void pump(child.stderr);
  return { child, output: () => text };
}

/** Waits at most `ms` for `child` to exit; kills it and rejects when it is still running. */
async function exitWithin(
  what: string,
  child: Deno.ChildProcess,
  ms: number,
  output: () => string,
): Promise<Deno.CommandStatus> {
  try {
    return await within(what, child.status, ms);
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
    await child.status;
    throw new Error(`${(e as Error).message}; it was still running. Output:\n${output()}`);
  }
}

/** Runs main.ts with `args`, which must refuse to start; returns its exit code and output. */
async function refusal(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await within(
    "a server that must refuse to start to exit",
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...args],
      stdin: "null",
      signal: AbortSignal.timeout(REFUSAL_WAIT_MS),
    }).output(),
    REFUSAL_WAIT_MS + 1000,
  );
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

/** Asserts the refusal is exactly one `Cannot start: …` line on stderr, and a non-zero exit. */
function assertOneLine(result: { code: number; stdout: string; stderr: string }): string {
  assert.notEqual(result.code, 0, result.stderr);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0], /^Cannot start: /);
  assert.doesNotMatch(result.stderr, /\bat .*\.ts:\d+|Uncaught/, "no stack trace");
  assert.doesNotMatch(result.stdout, /Listening on/);
  return lines[0];
}

// Probe once: without redis-server the --redis case is registered as ignored, with the reason.
const redisProbe = await startRedis();
await redisProbe?.stop();
const NO_REDIS = redisProbe === null;

for (const withRedis of [false, true]) {
  Deno.test({
    name: `a port already in use ends in one Cannot start line naming the port and --port${
      withRedis ? `, with --redis${NO_REDIS ? " (skipped: no redis-server)" : ""}` : ""
    }`,
    ignore: withRedis && NO_REDIS,
    async fn() {
      const redis = withRedis ? await startRedis() : null;
      if (withRedis && redis === null) throw new Error("Cannot start redis-server");
      const backend = redis === null ? ["--data", ":memory:"] : ["--redis", redis.url];
      const first = await spawnServer(["--port", "0", ...backend]);
      try {
        const line = assertOneLine(await refusal(["--port", String(first.port), ...backend]));
        assert.match(line, new RegExp(`\\b127\\.0\\.0\\.1:${first.port}\\b`));
        assert.match(line, /already in use/);
        assert.match(line, /--port/);
      } finally {
        await first.stop();
        await redis?.stop();
      }
    },
  });
}

for (const instant of [0, 20, 50, 100, 200, 400]) {
  Deno.test({
    name: `SIGINT ${instant} ms after the process starts stops it within ${SIGNAL_EXIT_MS} ms`,
    ignore: !SIGNALS_WORK,
    async fn() {
      const { child, output } = spawnMain(["--port", "0", "--data", ":memory:"]);
      await new Promise((resolve) => setTimeout(resolve, instant));
      child.kill("SIGINT");
      const status = await exitWithin(
        "the process to exit on SIGINT",
        child,
        SIGNAL_EXIT_MS,
        output,
      );
      // Killed by the signal before main.ts ran, or a clean stop once it handles signals.
      assert.ok(
        status.code === 0 || status.signal === "SIGINT",
        `exit ${status.code}, signal ${status.signal}:\n${output()}`,
      );
    },
  });
}

Deno.test({
  name: "SIGINT during a start that waits on Redis exits 0 at once, even begun with SIGINT ignored",
  ignore: !SIGNALS_WORK,
  async fn() {
    // A Redis that accepts connections and never answers, so the start waits on it for seconds;
    // its accept also tells the test that main.ts is running, whatever the machine's load. A
    // background job begins with SIGINT ignored, so only the server's own listener, added before
    // anything else runs, can stop it now (without it the start failed after the connect timeout).
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const url = `redis://127.0.0.1:${silent.addr.port}`;
    const { child, output } = spawnMain(["--port", "0", "--redis", url], { sigintIgnored: true });
    let conn: Deno.Conn | undefined;
    try {
      conn = await within("the server to connect to Redis", silent.accept(), REFUSAL_WAIT_MS);
      child.kill("SIGINT");
      const status = await exitWithin(
        "the process to exit on SIGINT",
        child,
        SIGNAL_EXIT_MS,
        output,
      );
      assert.equal(status.code, 0, output());
      assert.doesNotMatch(output(), /Listening on|Cannot start/);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      conn?.close();
      silent.close();
    }
  },
});

Deno.test("a --cert that is not a certificate ends in one Cannot start line naming the files", () =>
  withDir(async (dir) => {
    const pem = `${dir}/junk.pem`;
    await Deno.writeTextFile(pem, "not a certificate\n");
    const line = assertOneLine(
      await refusal(["--port", "0", "--data", ":memory:", "--cert", pem, "--key", pem]),
    );
    assert.ok(line.includes(`--cert ${pem} with --key ${pem}`), line);
    assert.match(line, /PEM certificate chain and its private key/);
  }));

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chat_startup_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a history file with damaged pages ends in one Cannot start line naming it and the fix", () =>
  withDir(async (dir) => {
    const data = `${dir}/chat.db`;
    writeHistory(data);
    const { pageSize } = leafOf(data, "a", 1);
    const pages = Deno.statSync(data).size / pageSize;
    // Everything but page 1 (the header and the schema), as a failing disk might leave it.
    for (let page = 2; page <= pages; page++) damagePage(data, page, pageSize);
    const line = assertOneLine(await refusal(["--port", "0", "--data", data]));
    assert.ok(line.includes(`${data} is damaged`), line);
    assert.match(line, /database disk image is malformed/);
    assert.ok(line.includes(`sqlite3 ${data} "PRAGMA integrity_check"`), line);
    assert.match(line, /restore the file from a backup/);
  }));

Deno.test("a second server on the same --data file refuses to start; the first goes on", () =>
  withDir(async (dir) => {
    const data = `${dir}/chat.db`;
    const first = await spawnServer(["--port", "0", "--data", data]);
    try {
      const line = assertOneLine(await refusal(["--port", "0", "--data", data]));
      assert.ok(line.includes(`${data} is in use by another running server`), line);
      assert.match(line, /stop that server first, or give this one its own --data file/);
      const alice = await TestClient.connect(first.wsUrl, "alice");
      await alice.request({ type: "join", room: "general" }, (m) => m.type === "joined");
      const said = await alice.request(
        { type: "say", room: "general", text: "still here", cid: "c1" },
        (m) => m.type === "message" || m.type === "error",
      );
      assert.deepEqual([said.type, said.seq], ["message", 1]);
      await alice.close();
    } finally {
      assert.equal(await first.stop(), 0);
    }
  }));

Deno.test("the lock of a server killed with SIGKILL does not keep the next one from starting", () =>
  withDir(async (dir) => {
    const data = `${dir}/chat.db`;
    const first = await spawnServer(["--port", "0", "--data", data]);
    const alice = await TestClient.connect(first.wsUrl, "alice");
    await alice.request({ type: "join", room: "general" }, (m) => m.type === "joined");
    await alice.request(
      { type: "say", room: "general", text: "before the kill", cid: "c1" },
      (m) => m.type === "message",
    );
    await first.stop("SIGKILL");
    await alice.closed;
    const second = await spawnServer(["--port", "0", "--data", data]);
    try {
      const bob = await TestClient.connect(second.wsUrl, "bob");
      const joined = await bob.request(
        { type: "join", room: "general", since: 0 },
        (m) => m.type === "joined",
      );
      assert.deepEqual(joined.history.map((m: { text: string }) => m.text), ["before the kill"]);
      await bob.close();
    } finally {
      assert.equal(await second.stop(), 0);
    }
  }));

Deno.test("damage found later in a room is logged once, with the room, the file and the fix", () =>
  withDir(async (dir) => {
    const data = `${dir}/chat.db`;
    writeHistory(data);
    const damaged = ROOM_MESSAGES / 2;
    const { page, pageSize } = leafOf(data, "a", damaged);
    damagePage(data, page, pageSize);
    const server = await spawnServer(["--port", "0", "--data", data]);
    const tries = 20;
    try {
      const alice = await TestClient.connect(server.wsUrl, "alice");
      for (const room of ["a", "b"]) {
        const joined = await alice.request({ type: "join", room }, (m) => m.type === "joined");
        assert.equal(joined.seq, ROOM_MESSAGES, `joining ${room} reads only its newest page`);
      }
      for (let i = 0; i < tries; i++) {
        const reply = await alice.request(
          { type: "history", room: "a", after: damaged - 10, limit: 50, cid: `h${i}` },
          (m) => m.cid === `h${i}` || m.type === "history",
        );
        assert.deepEqual([reply.type, reply.code], ["error", "unavailable"]);
      }
      // The other room's history reads on.
      const b = await alice.request(
        { type: "history", room: "b", after: damaged - 10, limit: 50 },
        (m) => m.type === "history" || m.type === "error",
      );
      assert.equal(b.type, "history");
      assert.equal(b.messages.length, 50);
      await alice.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
    const lines = server.output().split("\n");
    const reports = lines.filter((l) => l.includes(" store_damaged "));
    assert.equal(reports.length, 1, `one report for ${tries} failed reads:\n${server.output()}`);
    // The hub's own line for a failed store call does not repeat with every request either.
    const failed = lines.filter((l) => l.includes(" store_failed "));
    assert.equal(failed.length, 1, `store_failed for ${tries} failed reads:\n${server.output()}`);
    assert.match(reports[0], /^\S+ ERROR store_damaged room=a error=/);
    assert.ok(reports[0].includes(`${data} is damaged`), reports[0]);
    assert.ok(reports[0].includes("PRAGMA integrity_check"), reports[0]);
    assert.match(reports[0], /restore the file from a backup/);
  }));
