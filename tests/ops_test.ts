/**
 * What an operator relies on, tested against the real server process: TLS, password and token
 * access control, per-address limits, Prometheus metrics and JSON logs.
 */
import assert from "node:assert/strict";
import { signJwt } from "../auth/jwt.ts";
import { type SpawnedServer, spawnServer, TestClient } from "./helpers.ts";
import { CLOSE_WAIT_MS, closedWithin, within } from "./helpers.ts";
import { rawHttp, type RawResponse, upgradeRequest } from "./server_fixture.ts";
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

/** The Sec-WebSocket-Accept a server must answer `request`'s key with (RFC 6455 section 4.2.2). */
async function expectedAccept(request: string): Promise<string> {
  const key = /^Sec-WebSocket-Key: (.+)$/m.exec(request)![1].trim();
  const guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + guid));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** Sends one real upgrade request for /ws and returns the response, with `accepted` for a 101. */
async function upgradeOutcome(port: number) {
  const request = upgradeRequest(port);
  const res = await rawHttp(port, request);
  const accepted = res.status === 101 &&
    res.headers.get("upgrade")?.toLowerCase() === "websocket" &&
    res.headers.get("sec-websocket-accept") === await expectedAccept(request);
  return { ...res, accepted };
}

/** What the server answers an upgrade it refuses for the address's limits (server.ts). */
function assertRefused429(res: RawResponse, body: string): void {
  assert.deepEqual(
    {
      status: res.status,
      body: res.body,
      retryAfter: res.headers.get("retry-after"),
      type: res.headers.get("content-type"),
    },
    { status: 429, body, retryAfter: "1", type: "text/plain; charset=utf-8" },
  );
}

Deno.test("the per-address connection limit answers a real upgrade over it with 429 and Retry-After", async () => {
  await withServer(["--max-connections-per-ip", "3", "--handshake-rate", "off"], async (s) => {
    const clients = await Promise.all([1, 2, 3].map((i) => TestClient.connect(s.wsUrl, `u${i}`)));
    assertRefused429(
      await upgradeOutcome(s.port),
      "Cannot connect: too many connections from your address.\n",
    );
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
});

Deno.test("the handshake rate upgrades a burst of real upgrade requests (101) and refuses the next ones with 429", async () => {
  // A burst of 3 and one token per 10 s: five requests in a row cannot earn a refill.
  await withServer(["--handshake-rate", "0.1/s,3"], async (s) => {
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await upgradeOutcome(s.port));
    assert.deepEqual(outcomes.map((o) => o.status), [101, 101, 101, 429, 429]);
    for (const o of outcomes.slice(0, 3)) assert.ok(o.accepted, "a 101 with the key's accept");
    const body = "Cannot connect: too many new connections from your address.\n";
    for (const o of outcomes.slice(3)) assertRefused429(o, body);
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
