/**
 * What an operator relies on, tested against the real server process: TLS, password and token
 * access control, per-address limits, Prometheus metrics and JSON logs.
 */
import assert from "node:assert/strict";
import { signJwt } from "../jwt.ts";
import { type SpawnedServer, spawnServer, TestClient } from "./helpers.ts";
import { CLOSE_WAIT_MS, closedWithin, within } from "./helpers.ts";
import { makeTestCert } from "./tls_test_cert.ts";

async function withServer(
  args: string[],
  body: (s: SpawnedServer) => Promise<void>,
  env?: Record<string, string>,
) {
  const server = await spawnServer(["--port", "0", ...args], env ? { env } : {});
  try {
    await body(server);
  } finally {
    assert.equal(await server.stop(), 0);
  }
}

/** Opens a socket, sends `hello`, and resolves with the first reply or the close code. */
async function helloOutcome(
  wsUrl: string,
  hello: Record<string, unknown>,
): Promise<{ welcome?: string; close?: number }> {
  const c = new TestClient(wsUrl);
  await within("the WebSocket upgrade", c.opened, CLOSE_WAIT_MS);
  c.send({ type: "hello", ...hello });
  const outcome = await Promise.race([
    c.waitFor((m) => m.type === "welcome").then((m) => ({ welcome: m.name as string })),
    c.closed.then((e) => ({ close: e.code })),
  ]);
  await c.close();
  return outcome;
}

/** Parses Prometheus text into sample name+labels → value, rejecting malformed lines. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const value = Number(m[2] === "+Inf" ? Infinity : m[2]);
    assert.ok(!Number.isNaN(value), line);
    samples.set(m[1], value);
  }
  return samples;
}

Deno.test("with --cert and --key the server speaks https and wss", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cert = await makeTestCert(dir);
    await withServer(["--cert", cert.certFile, "--key", cert.keyFile], async (s) => {
      assert.match(s.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
      const client = Deno.createHttpClient({ caCerts: [cert.cert] });
      try {
        const res = await fetch(s.url + "healthz", { client });
        assert.equal((await res.json()).status, "ok");
        const ws = new WebSocket(s.wsUrl, { client } as unknown as string[]);
        const { promise, resolve, reject } = Promise.withResolvers<string>();
        ws.onopen = () => ws.send(JSON.stringify({ type: "hello", name: "tls" }));
        ws.onmessage = (e) => resolve(e.data);
        ws.onerror = () => reject(new Error("Cannot connect over wss"));
        const welcome = JSON.parse(await within("the welcome over wss", promise, CLOSE_WAIT_MS));
        assert.equal(welcome.type, "welcome");
        const closed = new Promise((r) => ws.onclose = r);
        ws.close();
        await within("the close over wss", closed, CLOSE_WAIT_MS);
      } finally {
        client.close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a password is required, compared exactly, refused with 4001, and never logged", async () => {
  const secret = "correct-horse-battery";
  await withServer(["--log-format", "json"], async (s) => {
    assert.deepEqual(await helloOutcome(s.wsUrl, { name: "ann", password: secret }), {
      welcome: "ann",
    });
    assert.deepEqual(await helloOutcome(s.wsUrl, { name: "bob", password: secret + "x" }), {
      close: 4001,
    });
    assert.deepEqual(await helloOutcome(s.wsUrl, { name: "cat" }), { close: 4001 });
    assert.ok(!s.output().includes(secret), "the password appears in the log");
  }, { CHAT_PASSWORD: secret });
});

Deno.test("a JWT names the user; expired, forged, unsigned and wrong-algorithm tokens get 4001", async () => {
  const secret = "a-long-random-secret-for-tests-only-0123456789";
  const now = Math.floor(Date.now() / 1000);
  const valid = await signJwt({ sub: "dana", exp: now + 3600 }, secret);
  await withServer(["--jwt-secret", secret], async (s) => {
    assert.deepEqual(await helloOutcome(s.wsUrl, { token: valid }), { welcome: "dana" });
    // The token decides the name, whatever the hello says.
    assert.deepEqual(await helloOutcome(s.wsUrl, { name: "mallory", token: valid }), {
      welcome: "dana",
    });
    const expired = await signJwt({ sub: "eve", exp: now - 10 }, secret);
    assert.deepEqual(await helloOutcome(s.wsUrl, { token: expired }), { close: 4001 });
    const forged = await signJwt({ sub: "eve", exp: now + 3600 }, secret + "-wrong");
    assert.deepEqual(await helloOutcome(s.wsUrl, { token: forged }), { close: 4001 });
    const b64 = (o: unknown) =>
      btoa(JSON.stringify(o)).replaceAll("=", "").replaceAll("+", "-").replaceAll("/", "_");
    const unsigned = `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "eve" })}.`;
    assert.deepEqual(await helloOutcome(s.wsUrl, { token: unsigned }), { close: 4001 });
    const rs256 = await signJwt({ sub: "eve" }, secret, { header: { alg: "RS256", typ: "JWT" } });
    assert.deepEqual(await helloOutcome(s.wsUrl, { token: rs256 }), { close: 4001 });
    assert.deepEqual(
      await helloOutcome(s.wsUrl, { name: "eve" }),
      { close: 4001 },
      "no token at all",
    );
    assert.ok(
      !s.output().includes(valid) && !s.output().includes(secret),
      "a token or the secret was logged",
    );
  });
});

Deno.test("a connection is closed with 4001 when its token expires", async () => {
  const secret = "another-long-random-secret-for-tests-0123456789";
  await withServer(["--jwt-secret", secret], async (s) => {
    const token = await signJwt({ sub: "brief", exp: Math.floor(Date.now() / 1000) + 2 }, secret);
    const c = new TestClient(s.wsUrl);
    await within("the WebSocket upgrade", c.opened, CLOSE_WAIT_MS);
    c.send({ type: "hello", token });
    await c.waitFor((m) => m.type === "welcome");
    const closed = await closedWithin(c);
    assert.equal(closed.code, 4001);
  });
});

Deno.test("per-address connection limit and handshake rate answer 429 before upgrading", async () => {
  await withServer(["--max-connections-per-ip", "3", "--handshake-rate", "off"], async (s) => {
    const clients = await Promise.all([1, 2, 3].map((i) => TestClient.connect(s.wsUrl, `u${i}`)));
    const res = await fetch(s.url + "ws", {
      headers: { upgrade: "websocket", connection: "upgrade" },
    });
    assert.equal(res.status, 429);
    await res.body?.cancel();
    await clients[0].close();
    // The slot frees as soon as the server has dropped the connection.
    let again: TestClient | undefined;
    for (let i = 0; i < 50 && again === undefined; i++) {
      again = await TestClient.connect(s.wsUrl, "u4").catch(() => undefined);
      if (again === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(again, "a freed slot can be used again");
    await Promise.all([again.close(), clients[1].close(), clients[2].close()]);
  });
  await withServer(["--handshake-rate", "1/s,2"], async (s) => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(s.url + "ws", {
        headers: { upgrade: "websocket", connection: "upgrade", "sec-websocket-version": "13" },
      });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    assert.equal(statuses[2], 429, `statuses ${statuses}`);
  });
});

Deno.test("metrics parse as Prometheus text and move when traffic flows; a metrics token guards them", async () => {
  await withServer(["--metrics-token", "scrape-me", "--rate-limit", "off"], async (s) => {
    const scrape = async () => {
      const res = await fetch(s.url + "metrics", {
        headers: { authorization: "Bearer scrape-me" },
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
      return parsePrometheus(await res.text());
    };
    const unauthorized = await fetch(s.url + "metrics");
    assert.equal(unauthorized.status, 401);
    await unauthorized.body?.cancel();
    const before = await scrape();
    for (
      const name of [
        "chat_connections",
        "chat_rooms",
        "chat_messages_received_total",
        "chat_messages_delivered_total",
        "chat_frames_sent_total",
        "chat_send_queue_bytes_max",
        "chat_busy_refusals_total",
        "chat_room_log_bytes_max",
        'chat_flush_seconds_bucket{le="+Inf"}',
        'chat_store_commit_seconds_bucket{le="+Inf"}',
      ]
    ) assert.ok(before.has(name), `missing ${name}`);
    const a = await TestClient.connect(s.wsUrl, "ann");
    const b = await TestClient.connect(s.wsUrl, "ben");
    await a.request({ type: "join", room: "general" }, (m) => m.type === "joined");
    await b.request({ type: "join", room: "general" }, (m) => m.type === "joined");
    for (let i = 0; i < 5; i++) a.send({ type: "say", room: "general", text: `m${i}` });
    await b.waitFor((m) => m.type === "message" && m.text === "m4");
    a.send({ type: "say", room: "nowhere", text: "x" });
    await a.waitFor((m) => m.type === "error");
    const during = await scrape();
    assert.equal(during.get("chat_connections"), 2);
    assert.equal(during.get("chat_rooms"), 1);
    assert.equal(during.get("chat_messages_received_total"), 5);
    assert.ok(during.get("chat_messages_delivered_total")! >= 10);
    assert.ok(during.get("chat_store_commit_seconds_count")! >= 1);
    assert.equal(during.get('chat_rejected_total{code="not_in_room"}'), 1);
    await a.close();
    await b.close();
    await new Promise((r) => setTimeout(r, 50));
    const after = await scrape();
    assert.equal(after.get('chat_disconnects_total{reason="client"}'), 2);
  });
});

Deno.test("--log-format json writes one JSON object per line, with no message text", async () => {
  await withServer(["--log-format", "json", "--log-level", "debug"], async (s) => {
    const a = await TestClient.connect(s.wsUrl, "logger");
    await a.request({ type: "join", room: "general" }, (m) => m.type === "joined");
    await a.request(
      { type: "say", room: "general", text: "secret words here" },
      (m) => m.type === "message",
    );
    await a.close();
    await new Promise((r) => setTimeout(r, 50));
    const lines = s.output().split("\n").filter((l) => l.startsWith("{"));
    assert.ok(lines.length >= 3, s.output());
    const entries = lines.map((l) => JSON.parse(l));
    for (const e of entries) {
      assert.equal(typeof e.time, "string");
      assert.ok(["debug", "info", "warn", "error"].includes(e.level));
      assert.equal(typeof e.event, "string");
    }
    assert.ok(
      entries.some((e) => e.event === "join" && e.name === "logger" && e.room === "general"),
    );
    assert.ok(!s.output().includes("secret words here"));
  });
});
