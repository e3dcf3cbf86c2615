/**
 * Flags as a user types them, against `main.ts` as a process: what each one really changes in the
 * running server. How every flag parses is in config_test.ts; this file holds what only a real
 * process can show (addresses, permissions, files, the environment).
 */
import assert from "node:assert/strict";
import { spawnServer, TestClient } from "./helpers.ts";

/** Open connections per address the server allows by default (`--max-connections-per-ip`). */
const PER_ADDRESS_LIMIT = 20;
/** More upgrades than one address may hold, each claiming a different forwarded address. */
const FORWARDED_UPGRADES = PER_ADDRESS_LIMIT + 5;

/** The forwarded address of upgrade `i`: what the proxy appended, after what the client claimed. */
const forwardedFor = (i: number) => `198.51.100.7, 203.0.113.${i}`;

/** Opens `FORWARDED_UPGRADES` sockets with distinct X-Forwarded-For headers: which were upgraded. */
async function forwardedUpgrades(
  wsUrl: string,
): Promise<{ opened: TestClient[]; refused: number }> {
  const outcomes = await Promise.all(
    Array.from({ length: FORWARDED_UPGRADES }, async (_, i) => {
      const c = new TestClient(wsUrl, { headers: { "x-forwarded-for": forwardedFor(i + 1) } });
      try {
        await c.opened;
        return c;
      } catch {
        return null;
      }
    }),
  );
  const opened = outcomes.filter((c) => c !== null);
  return { opened, refused: outcomes.length - opened.length };
}

for (
  const [how, args] of [
    ["alone", ["--trust-proxy"]],
    ["followed by another flag", ["--trust-proxy", "--log-level", "info"]],
  ] as const
) {
  Deno.test(`--trust-proxy ${how}: each client is its last X-Forwarded-For entry, for limits and logs`, async () => {
    const server = await spawnServer(["--port", "0", ...args]);
    try {
      const { opened, refused } = await forwardedUpgrades(server.wsUrl);
      assert.equal(refused, 0, `${refused} of ${FORWARDED_UPGRADES} upgrades were refused`);
      await Promise.all(opened.map(async (c, i) => {
        c.send({ type: "hello", name: `u${i + 1}` });
        await c.waitFor((m) => m.type === "welcome");
      }));
      const log = server.output();
      for (let i = 1; i <= FORWARDED_UPGRADES; i++) {
        const name = new RegExp(` hello .*name=u${i}(\\s|$)`);
        const line = log.split("\n").find((l) => name.test(l));
        assert.ok(line, `a hello line for u${i}\n${log}`);
        assert.match(line, new RegExp(`address=203\\.0\\.113\\.${i}(\\s|$)`));
      }
      assert.ok(!log.includes("198.51.100.7"), "the entry the client claimed is never used");
      await Promise.all(opened.map((c) => c.close()));
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
}

Deno.test("without --trust-proxy, X-Forwarded-For is ignored: one address, limited to 20", async () => {
  // The sockets say no hello, so the (tighter) limit on those is lifted to see the open one.
  const server = await spawnServer(["--port", "0", "--max-pending-per-ip", "0"]);
  try {
    const { opened, refused } = await forwardedUpgrades(server.wsUrl);
    assert.deepEqual(
      [opened.length, refused],
      [PER_ADDRESS_LIMIT, FORWARDED_UPGRADES - PER_ADDRESS_LIMIT],
    );
    assert.match(server.output(), /refused address=127\.0\.0\.1 code=too_many_connections/);
    await Promise.all(opened.map((c) => c.close()));
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Runs main.ts to completion with `permissions` and `args`. */
async function runMain(
  args: string[],
  permissions: string[] = ["-A"],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, MAIN, ...args],
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

for (
  const [args, expected] of [
    [["--trust-proxy=true"], "Cannot start: --trust-proxy takes no value"],
    [["--cert", "cert.pem"], "Cannot serve TLS: give both --cert and --key"],
    [["--key", "key.pem"], "Cannot serve TLS: give both --cert and --key"],
    [["--port"], "Cannot start: --port needs a value"],
  ] as const
) {
  Deno.test(`"${args.join(" ")}" exits 2 with one line: ${expected}`, async () => {
    const { code, stdout, stderr } = await runMain([...args, "--data", ":memory:"]);
    assert.equal(code, 2, stderr);
    assert.ok(stderr.startsWith(expected), stderr);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
    assert.equal(stdout, "");
  });
}

Deno.test("--redis without --allow-env for all variables exits 2 before connecting", async () => {
  const { code, stderr } = await runMain(
    ["--port", "0", "--redis", "redis://127.0.0.1:1/0"],
    [
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env=CHAT_PASSWORD,CHAT_JWT_SECRET,CHAT_METRICS_TOKEN",
    ],
  );
  assert.equal(code, 2, stderr);
  assert.equal(
    stderr.trim(),
    "Cannot start with --redis: the Redis client needs --allow-env (all variables)",
  );
});

/** Whether a hello carrying `password` is welcomed, or closed with which code. */
async function passwordOutcome(wsUrl: string, password: string): Promise<string> {
  const c = new TestClient(wsUrl);
  await c.opened;
  c.send({ type: "hello", name: `p${crypto.randomUUID().slice(0, 8)}`, password });
  const outcome = await Promise.race([
    c.waitFor((m) => m.type === "welcome").then(() => "welcome"),
    c.closed.then((e) => `closed ${e.code}`),
  ]);
  await c.close();
  return outcome;
}

Deno.test("--password as a flag is required, and wins over CHAT_PASSWORD", async () => {
  const server = await spawnServer(["--port", "0", "--password", "from-flag"], {
    env: { CHAT_PASSWORD: "from-env" },
  });
  try {
    assert.equal(await passwordOutcome(server.wsUrl, "from-flag"), "welcome");
    assert.equal(await passwordOutcome(server.wsUrl, "from-env"), "closed 4001");
    assert.ok(!server.output().includes("from-flag"), "the password is never logged");
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("--host puts the server on that address only", async () => {
  // 127.0.0.2 is loopback on Linux; elsewhere only 127.0.0.1 may exist.
  const host = Deno.build.os === "linux" ? "127.0.0.2" : "127.0.0.1";
  const server = await spawnServer(["--port", "0", "--host", host]);
  try {
    assert.equal(new URL(server.url).hostname, host);
    const health = await fetch(`http://${host}:${server.port}/healthz`);
    assert.equal((await health.json()).status, "ok");
    if (host !== "127.0.0.1") {
      await assert.rejects(fetch(`http://127.0.0.1:${server.port}/healthz`));
    }
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("--synchronous normal runs on a file and keeps history across a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_flags_test_" });
  const args = ["--port", "0", "--data", `${dir}/chat.db`, "--synchronous", "normal"];
  try {
    const first = await spawnServer(args);
    try {
      const alice = await TestClient.connect(first.wsUrl, "alice");
      await alice.request({ type: "join", room: "general" }, (m) => m.type === "joined");
      await alice.request(
        { type: "say", room: "general", text: "kept", cid: "n1" },
        (m) => m.type === "message",
      );
      await alice.close();
    } finally {
      assert.equal(await first.stop(), 0);
    }
    const second = await spawnServer(args);
    try {
      const bob = await TestClient.connect(second.wsUrl, "bob");
      const joined = await bob.request(
        { type: "join", room: "general", since: 0 },
        (m) => m.type === "joined",
      );
      assert.deepEqual(joined.history.map((m: { text: string }) => m.text), ["kept"]);
      await bob.close();
    } finally {
      assert.equal(await second.stop(), 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
