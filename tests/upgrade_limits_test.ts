/**
 * What a connection can make the server hold before and after its upgrade (issue 14, items 3 and
 * 6), against the real server process over raw sockets: a socket the server has closed counts
 * toward the limits until its TCP connection has really ended; connections that have not said
 * hello have their own, tighter limits; and upgrades are refused with 503 while the process is
 * over its memory ceiling.
 */
import assert from "node:assert/strict";
import {
  CLOSE_WAIT_MS,
  eventually,
  sleep,
  type SpawnedServer,
  spawnServer,
  within,
} from "./helpers.ts";
import { rawHttp, RawSocket, upgradeRequest } from "./server_fixture.ts";
import { CloseCode } from "../protocol/protocol.ts";
import { startRedis, type TestRedis } from "./redis_server.ts";

// Probe once: without redis-server the --redis variants are registered as ignored, with the reason.
const probe = await startRedis();
await probe?.stop();
const NO_REDIS = probe === null;

async function withServer(
  args: string[],
  body: (s: SpawnedServer) => Promise<void>,
  redis?: TestRedis,
) {
  const server = await spawnServer([
    "--port",
    "0",
    "--handshake-rate",
    "off",
    ...(redis ? ["--redis", redis.url] : []),
    ...args,
  ]);
  try {
    await body(server);
  } finally {
    assert.equal(await server.stop(), 0);
  }
}

/**
 * Registers `fn` twice: on one instance, and on an instance sharing a Redis (the limits are the
 * instance's own either way, and must hold with `--redis` too).
 */
function bothWays(name: string, fn: (redis?: TestRedis) => Promise<void>): void {
  Deno.test(`${name} (one instance)`, () => fn());
  Deno.test({
    name: NO_REDIS ? `${name} (--redis; skipped: no redis-server)` : `${name} (--redis)`,
    ignore: NO_REDIS,
    async fn() {
      const redis = await startRedis();
      if (redis === null) throw new Error("Cannot start redis-server");
      try {
        await fn(redis);
      } finally {
        await redis.stop();
      }
    },
  });
}

/** The HTTP status an upgrade request for /ws gets now. */
async function upgradeStatus(port: number): Promise<number> {
  return (await within("an answer to the upgrade", rawHttp(port, upgradeRequest(port)), 5000))
    .status;
}

/** Opens raw sockets that have said nothing; closes them all on disposal. */
async function rawSockets(port: number, n: number): Promise<RawSocket[] & Disposable> {
  const list: RawSocket[] = [];
  for (let i = 0; i < n; i++) list.push(await RawSocket.connect(port));
  return Object.assign(list, { [Symbol.dispose]: () => list.forEach((r) => r.close()) });
}

/** Reads frames until the server's close frame and returns its code; does not answer it. */
async function serverCloseCode(r: RawSocket): Promise<number | null> {
  return (await within("the server's close frame", r.drain(), CLOSE_WAIT_MS)).closeCode;
}

bothWays(
  "a socket the server closed keeps its address slot until its TCP connection ends",
  async (redis) => {
    const args = ["--max-connections-per-ip", "2", "--handshake-timeout", "0.2"];
    await withServer(args, async (s) => {
      using held = await rawSockets(s.port, 2);
      // Neither says hello: the server closes both with 4000 and waits for a close frame that
      // never comes, so both stay in CLOSING with whatever Deno holds for them.
      for (const r of held) assert.equal(await serverCloseCode(r), CloseCode.badHandshake);
      assert.equal(await upgradeStatus(s.port), 429, "the closing sockets still count");
      held[0].close();
      // Once the connection ends the slot is free again.
      await eventually(
        "a freed slot admits an upgrade",
        async () => await upgradeStatus(s.port) === 101,
      );
    }, redis);
  },
);

/** Sends a hello on a raw socket and waits for the welcome. */
async function sayHello(r: RawSocket, name: string): Promise<void> {
  await r.sendText(JSON.stringify({ type: "hello", name }));
  const frame = await within("the welcome", r.readFrame(), CLOSE_WAIT_MS);
  assert.match(new TextDecoder().decode(frame?.payload), /"type":"welcome"/);
}

bothWays(
  "connections that have not said hello are limited per address (429 at once with --upgrade-wait 0); a hello frees the slot",
  async (redis) => {
    await withServer(["--max-pending-per-ip", "2", "--upgrade-wait", "0"], async (s) => {
      using pending = await rawSockets(s.port, 2);
      const refused = await within(
        "an answer to the upgrade",
        rawHttp(s.port, upgradeRequest(s.port)),
        5000,
      );
      assert.equal(refused.status, 429);
      assert.equal(refused.headers.get("retry-after"), "1");
      assert.match(refused.body, /too many connections that have not said hello/);
      await sayHello(pending[0], "ann");
      assert.equal(await upgradeStatus(s.port), 101, "ann's hello freed her pending slot");
      assert.match(s.output(), /refused address=127\.0\.0\.1 code=too_many_pending/);
    }, redis);
  },
);

Deno.test("connections that have not said hello are limited in total (503 at once with --upgrade-wait 0), closed ones included", async () => {
  await withServer(
    [
      "--max-pending-connections",
      "2",
      "--max-pending-per-ip",
      "0",
      "--handshake-timeout",
      "0.2",
      "--upgrade-wait",
      "0",
    ],
    async (s) => {
      using pending = await rawSockets(s.port, 2);
      // Closed by the server for saying nothing, but their connections are still open.
      for (const r of pending) assert.equal(await serverCloseCode(r), CloseCode.badHandshake);
      const refused = await within(
        "an answer to the upgrade",
        rawHttp(s.port, upgradeRequest(s.port)),
        5000,
      );
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get("retry-after"), "5");
      pending[1].close();
      await eventually(
        "a freed slot admits an upgrade",
        async () => await upgradeStatus(s.port) === 101,
      );
    },
  );
});

bothWays(
  "an upgrade over a pending limit waits, in arrival order, for a slot: each hello lets the next one in",
  async (redis) => {
    await withServer(["--max-pending-per-ip", "2", "--upgrade-wait", "5"], async (s) => {
      using pending = await rawSockets(s.port, 2);
      // Two more upgrades over the limit: neither is refused, both wait (and stay open once in).
      const first = RawSocket.connect(s.port);
      const second = RawSocket.connect(s.port);
      let settled = 0;
      first.then(() => settled++, () => settled++);
      second.then(() => settled++, () => settled++);
      await sleep(300);
      assert.equal(settled, 0, "both wait instead of being refused");
      await sayHello(pending[0], "ann");
      const a = await within("the first to be let in", first, 2000);
      await sleep(200);
      assert.equal(settled, 1, "one hello frees one slot: the second still waits");
      await sayHello(pending[1], "bob");
      const b = await within("the second to be let in", second, 2000);
      a.close();
      b.close();
    }, redis);
  },
);

Deno.test("an upgrade whose wait for a pending slot runs out is refused 429 (per address) or 503 (in all)", async () => {
  await withServer(["--max-pending-per-ip", "1", "--upgrade-wait", "0.5"], async (s) => {
    using _pending = await rawSockets(s.port, 1);
    const started = performance.now();
    const refused = await within("the refusal", rawHttp(s.port, upgradeRequest(s.port)), 5000);
    assert.equal(refused.status, 429);
    assert.ok(performance.now() - started >= 450, "it waited --upgrade-wait first");
  });
  await withServer(
    ["--max-pending-connections", "1", "--max-pending-per-ip", "0", "--upgrade-wait", "0.5"],
    async (s) => {
      using _pending = await rawSockets(s.port, 1);
      const refused = await within("the refusal", rawHttp(s.port, upgradeRequest(s.port)), 5000);
      assert.equal(refused.status, 503);
    },
  );
});

Deno.test("over --memory-limit the server refuses upgrades with 503 and still serves pages", async () => {
  await withServer(["--memory-limit", "1"], async (s) => {
    const refused = await within(
      "an answer to the upgrade",
      rawHttp(s.port, upgradeRequest(s.port)),
      5000,
    );
    assert.equal(refused.status, 503);
    assert.match(refused.body, /low on memory/);
    const health = await fetch(s.url + "healthz");
    assert.equal(health.status, 200);
    await health.body?.cancel();
    assert.match(s.output(), /refused address=127\.0\.0\.1 code=memory/);
  });
  await withServer([], async (s) => {
    assert.equal(await upgradeStatus(s.port), 101, "the default ceiling is above an idle server");
  });
});

/** Deno's own limit on one inbound WebSocket message, which it buffers whole before any check. */
const DENO_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** RSS per byte Deno buffers of an unfinished frame, at most (measured ~1.25). */
const BUFFERED_RSS_FACTOR = 1.5;

async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
}

/** Sends the header of a text frame announcing `length` bytes, then `sent` bytes of its payload. */
async function sendPartialFrame(r: RawSocket, length: number, sent: number): Promise<void> {
  const header = new Uint8Array(14);
  header[0] = 0x81;
  header[1] = 0x80 | 127;
  new DataView(header.buffer).setBigUint64(2, BigInt(length));
  // The mask is left zero, so the payload goes as it is.
  const chunk = new Uint8Array(1024 * 1024).fill(0x61);
  let written = 0;
  while (written < header.length) written += await r.conn.write(header.subarray(written));
  for (let left = sent; left > 0; left -= chunk.length) {
    const part = chunk.subarray(0, Math.min(left, chunk.length));
    let done = 0;
    while (done < part.length) done += await r.conn.write(part.subarray(done));
  }
}

Deno.test("pre-hello sockets sending 60 MiB frames make the server hold at most the per-address pending limit of them", async () => {
  const perIp = 2;
  const args = [
    "--max-pending-per-ip",
    String(perIp),
    "--memory-limit",
    "0",
    "--upgrade-wait",
    "0",
  ];
  await withServer(args, async (s) => {
    const before = await rssBytes(s.process.pid);
    using pending = await rawSockets(s.port, perIp);
    const frame = 60 * 1024 * 1024;
    // Each frame stops one byte short, so Deno keeps buffering it and never hands it over.
    await Promise.all(pending.map((r) => sendPartialFrame(r, frame, frame - 1)));
    assert.equal(await upgradeStatus(s.port), 429, "no third pending socket from this address");
    const held = await rssBytes(s.process.pid) - before;
    const bound = perIp * DENO_MAX_MESSAGE_BYTES * BUFFERED_RSS_FACTOR;
    assert.ok(held > perIp * frame * 0.9, `the frames were buffered: ${held} bytes held`);
    assert.ok(held < bound, `${held} bytes held, over ${bound}`);
  });
});
