/** Resume tokens rotate at every takeover, over real sockets: one instance, and two with Redis. */
import assert from "node:assert/strict";
import { CLOSE_WAIT_MS, closedWithin, spawnServer, TestClient, within } from "./helpers.ts";
import { redisServerVersion } from "../scripts/redis_process.ts";
import { startRedis } from "./redis_server.ts";

const HAVE_REDIS = await redisServerVersion() !== null;

/**
 * Takes "alice" over with her token twice, once from a live connection and once from her
 * reservation: each welcome carries a new token, and the spent one gets 4009.
 */
async function rotates(wsUrl: string) {
  const first = await TestClient.connect(wsUrl, "alice");
  const clients = [first];
  try {
    const t1 = first.messages[0].resume;
    const second = await TestClient.connect(wsUrl, "alice", { resume: t1 });
    clients.push(second);
    assert.equal((await closedWithin(first)).code, 4010);
    const t2 = second.messages[0].resume;
    assert.match(t2, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(t2, t1, "a live takeover rotates the token");

    const leaked = new TestClient(wsUrl);
    clients.push(leaked);
    await within("the upgrade", leaked.opened, CLOSE_WAIT_MS);
    leaked.send({ type: "hello", name: "alice", resume: t1 });
    assert.equal((await closedWithin(leaked)).code, 4009, "the spent token takes nothing");
    assert.equal(second.socket.readyState, WebSocket.OPEN);

    await second.close();
    const third = await TestClient.connect(wsUrl, "alice", { resume: t2 });
    clients.push(third);
    const t3 = third.messages[0].resume;
    assert.notEqual(t3, t2, "taking the reservation back rotates it too");
    const stale = new TestClient(wsUrl);
    clients.push(stale);
    await within("the upgrade", stale.opened, CLOSE_WAIT_MS);
    stale.send({ type: "hello", name: "alice", resume: t2 });
    assert.equal((await closedWithin(stale)).code, 4009);
  } finally {
    for (const c of clients) await c.close();
  }
}

Deno.test("A takeover with the resume token gets a new token, and the old one no longer works (one instance)", async () => {
  const server = await spawnServer(["--port", "0"]);
  try {
    await rotates(server.wsUrl);
  } finally {
    await server.stop();
  }
});

Deno.test({
  name:
    "A takeover with the resume token gets a new token, and the old one no longer works (--redis)",
  ignore: !HAVE_REDIS,
  async fn() {
    const redis = await startRedis();
    assert.ok(redis !== null, "redis-server was found but did not start");
    const servers = [];
    try {
      servers.push(await spawnServer(["--port", "0", "--redis", redis.url]));
      servers.push(await spawnServer(["--port", "0", "--redis", redis.url]));
      await rotates(servers[0].wsUrl);
    } finally {
      for (const s of servers) await s.stop();
      await redis.stop();
    }
  },
});
