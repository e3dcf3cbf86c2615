/**
 * `main.ts` as a process: the Listening line, --help, --version, refused flags, and graceful
 * shutdown on SIGTERM and SIGINT (every socket gets 1001, exit 0 within 5 s; a second signal
 * exits at once). Everything else is tested in-process, where it is faster.
 */
import assert from "node:assert/strict";
import { FLAG_ROWS, flagUsage, VERSION } from "../ops/config.ts";
import { type SpawnedServer, spawnServer, TestClient } from "./helpers.ts";
import { CLOSE_WAIT_MS, closedWithin, within } from "./helpers.ts";
import { RawSocket } from "./server_fixture.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const SIGNALS_WORK = Deno.build.os !== "windows";
/** Keeps history in memory, so no test writes chat.db into the repository or shares one. */
const IN_MEMORY = ["--data", ":memory:"];

/** Runs main.ts to completion with `args`. */
async function runMain(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

/** Resolves with the exit code, or null when the process is still running after `ms`. */
async function exitWithin(server: SpawnedServer, ms: number): Promise<number | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), ms));
  try {
    return await Promise.race([server.process.status.then((s) => s.code), late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("--port 0 prints a Listening line with the real port, where the chat answers", async () => {
  const server = await spawnServer(["--port", "0", ...IN_MEMORY]);
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.ok(server.port > 0);
    assert.match(server.output(), /Listening on http:\/\/127\.0\.0\.1:\d+\//);
    const health = await (await fetch(`${server.url}healthz`)).json();
    assert.equal(health.status, "ok");
    const alice = await TestClient.connect(server.wsUrl, "alice");
    // The welcome reports every documented limit with its real default (it may carry more).
    const limits = alice.messages[0].limits;
    assert.deepEqual(
      {
        maxTextChars: limits.maxTextChars,
        maxFrameBytes: limits.maxFrameBytes,
        maxRooms: limits.maxRooms,
        historyLimit: limits.historyLimit,
        rate: limits.rate,
      },
      {
        maxTextChars: 4000,
        maxFrameBytes: 16384,
        maxRooms: 32,
        historyLimit: 200,
        rate: { perSecond: 10, burst: 20 },
      },
    );
    assert.equal(alice.messages[0].version, VERSION);
    await alice.close();
  } finally {
    await server.stop();
  }
});

Deno.test("--help prints every flag with its default and exits 0", async () => {
  const { code, stdout } = await runMain(["--help"]);
  assert.equal(code, 0);
  // Driven by the flag table, so a new flag is checked here without touching this test.
  assert.ok(FLAG_ROWS.length >= 27, `the table has ${FLAG_ROWS.length} rows`);
  for (const row of FLAG_ROWS) {
    const usage = flagUsage(row);
    const at = stdout.indexOf(`\n  ${usage}\n`);
    assert.ok(at >= 0, `--help lists ${usage}`);
    const line = stdout.slice(at).split("\n")[2];
    assert.ok(line.endsWith(`(default: ${row.shown})`), `--help shows ${usage}'s default: ${line}`);
  }
  for (const flag of ["--help", "--version"]) {
    assert.ok(stdout.includes(`\n  ${flag} `), `--help lists ${flag}`);
  }
  for (const value of ["8000", "10/s,20", "16384", "4000", "1048576"]) {
    assert.ok(stdout.includes(value), `--help shows the default ${value}`);
  }
});

Deno.test("--version prints the version and exits 0", async () => {
  const { code, stdout } = await runMain(["--version"]);
  assert.equal(code, 0);
  assert.equal(stdout.trim(), VERSION);
});

for (
  const [args, mention] of [
    [["--bogus"], /bogus/],
    [["--port", "abc"], /--port/],
    [["--port", "70000"], /--port/],
    [["--rate-limit", "fast"], /--rate-limit/],
    [["--allow-origin", "evil"], /--allow-origin/],
    [["--max-frame-bytes", "10"], /--max-frame-bytes/],
    [["--handshake-timeout", "0"], /--handshake-timeout/],
    [["stray-positional"], /stray-positional|positional/i],
  ] as const
) {
  Deno.test(`"${args.join(" ")}" exits 2 with a message naming the problem`, async () => {
    const { code, stdout, stderr } = await runMain([...args]);
    assert.equal(code, 2, stderr);
    assert.match(stderr, /^Cannot /);
    assert.match(stderr, mention);
    assert.equal(stdout, "");
  });
}

Deno.test("history and seqs survive a restart with --data FILE", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_process_test_" });
  const data = `${dir}/chat.db`;
  try {
    const first = await spawnServer(["--port", "0", "--data", data]);
    try {
      const alice = await TestClient.connect(first.wsUrl, "alice");
      await alice.request({ type: "join", room: "general" }, (m) => m.type === "joined");
      await alice.request(
        { type: "say", room: "general", text: "remember me", cid: "p1" },
        (m) => m.type === "message",
      );
      await alice.close();
    } finally {
      await first.stop();
    }
    const second = await spawnServer(["--port", "0", "--data", data]);
    try {
      const bob = await TestClient.connect(second.wsUrl, "bob");
      const joined = await bob.request(
        { type: "join", room: "general", since: 0 },
        (m) => m.type === "joined",
      );
      assert.deepEqual(joined.history.map((m: { text: string }) => m.text), ["remember me"]);
      assert.equal(joined.seq, 1);
      const next = await bob.request(
        { type: "say", room: "general", text: "and me" },
        (m) => m.type === "message",
      );
      assert.equal(next.seq, 2, "seq continues across the restart");
      await bob.close();
    } finally {
      await second.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test({
    name: `${signal} closes every socket with 1001 server shutting down and exits 0 within 5 s`,
    ignore: !SIGNALS_WORK,
    async fn() {
      const server = await spawnServer(["--port", "0", ...IN_MEMORY]);
      try {
        const alice = await TestClient.connect(server.wsUrl, "alice");
        const bob = await TestClient.connect(server.wsUrl, "bob");
        await alice.request({ type: "join", room: "general" }, (m) => m.type === "joined");
        const quiet = new TestClient(server.wsUrl); // no hello yet
        await within("the WebSocket upgrade", quiet.opened, CLOSE_WAIT_MS);
        const started = performance.now();
        const code = await server.stop(signal);
        const elapsed = performance.now() - started;
        assert.equal(code, 0);
        assert.ok(elapsed < 5000, `exited after ${Math.round(elapsed)} ms`);
        for (const c of [alice, bob, quiet]) {
          const closed = await closedWithin(c);
          assert.deepEqual([closed.code, closed.reason], [1001, "server shutting down"]);
        }
      } finally {
        await server.stop("SIGKILL");
      }
    },
  });
}

/**
 * A server with a member that never reads: `evicted` false keeps it within a 64 MiB send budget
 * while 12 MB wait for it, so the server can neither deliver its 1001 nor finish shutting down by
 * itself; `evicted` true sends until the server drops it as a slow consumer.
 */
async function serverWithStalledClient(evicted: boolean): Promise<
  { server: SpawnedServer; stalled: RawSocket; alice: TestClient }
> {
  const budget = evicted ? [] : ["--send-queue-bytes", String(64 * 1024 * 1024)];
  const server = await spawnServer(["--port", "0", ...IN_MEMORY, "--rate-limit", "off", ...budget]);
  const alice = await TestClient.connect(server.wsUrl, "alice");
  await alice.request({ type: "join", room: "busy" }, (m) => m.type === "joined");
  const stalled = await RawSocket.connect(server.port);
  await stalled.sendText(JSON.stringify({ type: "hello", name: "stally" }));
  await stalled.sendText(JSON.stringify({ type: "join", room: "busy" }));
  await alice.waitFor((m) => m.type === "join" && m.user === "stally");
  const text = "x".repeat(4000);
  const gone = () => alice.messages.some((m) => m.type === "leave" && m.user === "stally");
  let sent = 0;
  while (evicted ? !gone() : sent < 3000) {
    assert.ok(sent < 20_000, "the stalled client was never evicted");
    for (let i = 0; i < 40; i++) alice.send({ type: "say", room: "busy", text, cid: `m${++sent}` });
    await alice.waitFor((m) => m.cid === `m${sent}`, 10_000);
  }
  assert.equal(gone(), evicted);
  return { server, stalled, alice };
}

/**
 * Opens a request that never finishes: a POST announcing a 1 MB body and sending 3 bytes. The
 * server answers it (405), but the listener's graceful shutdown waits for the body for ever, so
 * only the shutdown deadline or a second signal ends the process.
 */
async function holdOpenRequest(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const request =
    `POST / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 1000000\r\n\r\nabc`;
  await conn.write(new TextEncoder().encode(request));
  const head = new Uint8Array(1024);
  const n = await within("the 405 answer", conn.read(head), CLOSE_WAIT_MS);
  assert.match(new TextDecoder().decode(head.subarray(0, n ?? 0)), /^HTTP\/1\.1 405/);
  return conn;
}

Deno.test({
  name: "a second signal during a shutdown that cannot finish exits at once",
  ignore: !SIGNALS_WORK,
  async fn() {
    const server = await spawnServer(["--port", "0", ...IN_MEMORY]);
    const conn = await holdOpenRequest(server.port);
    try {
      server.process.kill("SIGTERM");
      assert.equal(await exitWithin(server, 700), null, "the first signal's shutdown is waiting");
      const started = performance.now();
      server.process.kill("SIGINT");
      const code = await exitWithin(server, 1000);
      assert.notEqual(code, null, "the second signal ended the process within 1 s");
      assert.notEqual(code, 0, "an interrupted shutdown does not report success");
      assert.ok(performance.now() - started < 1000);
    } finally {
      conn.close();
      await server.stop("SIGKILL");
    }
  },
});

Deno.test({
  name: "SIGTERM exits 0 within 5 s even when a request never finishes",
  ignore: !SIGNALS_WORK,
  async fn() {
    const server = await spawnServer(["--port", "0", ...IN_MEMORY]);
    const conn = await holdOpenRequest(server.port);
    try {
      const started = performance.now();
      server.process.kill("SIGTERM");
      // 5 s is the documented bound; allow scheduling slack for a loaded machine.
      const code = await exitWithin(server, 5500);
      const elapsed = performance.now() - started;
      assert.equal(code, 0, `exit code after ${Math.round(elapsed)} ms`);
    } finally {
      conn.close();
      await server.stop("SIGKILL");
    }
  },
});

for (const evicted of [false, true]) {
  const who = evicted ? "was evicted as a slow consumer" : "never reads";
  Deno.test({
    name: `SIGTERM exits 0 within 5 s even when a client ${who}`,
    ignore: !SIGNALS_WORK,
    async fn() {
      const { server, stalled, alice } = await serverWithStalledClient(evicted);
      try {
        const started = performance.now();
        server.process.kill("SIGTERM");
        // 5 s is the documented bound; allow scheduling slack for a loaded machine.
        const code = await exitWithin(server, 5500);
        const elapsed = performance.now() - started;
        assert.equal(code, 0, `exit code after ${Math.round(elapsed)} ms`);
        await closedWithin(alice);
      } finally {
        stalled.close();
        await server.stop("SIGKILL");
      }
    },
  });
}
