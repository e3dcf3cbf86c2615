/**
 * Session tokens rotate at every sign-in, and accounts hold their names, over real sockets: one
 * instance, and two sharing accounts through Redis.
 */
import assert from "node:assert/strict";
import { CLOSE_WAIT_MS, closedWithin, spawnServer, TestClient, within } from "./helpers.ts";
import { redisServerVersion } from "../scripts/redis_process.ts";
import { startRedis } from "./redis_server.ts";
import { NAME_HELD_ELSEWHERE } from "../hub/sessions.ts";

const HAVE_REDIS = await redisServerVersion() !== null;

/** Signs in as `name` with `resume`, again while the account's connections are on another instance. */
async function signIn(wsUrl: string, name: string, resume: string): Promise<TestClient> {
  const deadline = Date.now() + CLOSE_WAIT_MS;
  for (;;) {
    const c = new TestClient(wsUrl);
    await within("the upgrade", c.opened, CLOSE_WAIT_MS);
    c.send({ type: "hello", name, resume });
    const first = await Promise.race([c.waitFor((m) => m.type === "welcome"), c.closed]);
    if (!(first instanceof CloseEvent)) return c;
    if (first.reason !== NAME_HELD_ELSEWHERE || Date.now() > deadline) {
      throw new Error(`signing in as ${name} was closed: ${first.code} ${first.reason}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Signs "alice" in three times on `here`: each welcome carries a new token, every connection stays
 * open, and a token is spent once its successor is used. Then, with all of them closed, her last
 * token signs her in on `there` (the account is the same on every instance), and a stranger is
 * refused her name there.
 */
async function rotates(here: string, there: string) {
  const first = await TestClient.connect(here, "alice");
  const clients = [first];
  try {
    const t1 = first.messages[0].resume;
    const second = await TestClient.connect(here, "alice", { resume: t1 });
    clients.push(second);
    const t2 = second.messages[0].resume;
    assert.match(t2, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(t2, t1, "signing in rotates the token");
    const third = await TestClient.connect(here, "alice", { resume: t2 });
    clients.push(third);
    const t3 = third.messages[0].resume;
    assert.notEqual(t3, t2);

    // t2 has been used, so t1, which it replaced, takes nothing any more.
    const leaked = new TestClient(here);
    clients.push(leaked);
    await within("the upgrade", leaked.opened, CLOSE_WAIT_MS);
    leaked.send({ type: "hello", name: "alice", resume: t1 });
    assert.equal((await closedWithin(leaked)).code, 4009, "the spent token takes nothing");
    for (const c of [first, second, third]) assert.equal(c.socket.readyState, WebSocket.OPEN);

    for (const c of [first, second, third]) await c.close();
    const back = await signIn(there, "alice", t3);
    clients.push(back);
    assert.equal(back.messages[0].name, "alice");
    assert.notEqual(back.messages[0].resume, t3);
    await back.close();
    const stranger = new TestClient(there);
    clients.push(stranger);
    await within("the upgrade", stranger.opened, CLOSE_WAIT_MS);
    stranger.send({ type: "hello", name: "Alice" });
    const refused = await closedWithin(stranger);
    assert.deepEqual([refused.code, refused.reason], [4009, "name taken"]);
  } finally {
    for (const c of clients) await c.close();
  }
}

Deno.test("Each sign-in with the session token gets a new one, and a spent token no longer works (one instance)", async () => {
  const server = await spawnServer(["--port", "0", "--data", ":memory:"]);
  try {
    await rotates(server.wsUrl, server.wsUrl);
  } finally {
    await server.stop();
  }
});

Deno.test({
  name:
    "Each sign-in with the session token gets a new one, a spent token no longer works, and the account is the same on another instance (--redis)",
  ignore: !HAVE_REDIS,
  async fn() {
    const redis = await startRedis();
    assert.ok(redis !== null, "redis-server was found but did not start");
    const servers = [];
    try {
      servers.push(await spawnServer(["--port", "0", "--redis", redis.url]));
      servers.push(await spawnServer(["--port", "0", "--redis", redis.url]));
      await rotates(servers[0].wsUrl, servers[1].wsUrl);
    } finally {
      for (const s of servers) await s.stop();
      await redis.stop();
    }
  },
});
