/**
 * Lookalike names over real sockets (issue 14, item 4): with `alice` online, a hello as `аlice`
 * (Cyrillic а) is refused as name taken, and a name with an invisible filler is refused with the
 * reason; on one instance, with `--password`, with `--jwt-secret` (the token's `sub`), and across
 * instances sharing a Redis, which claim names by the same key.
 */
import assert from "node:assert/strict";
import { signJwt } from "../auth/jwt.ts";
import { closedWithin, type Msg, type SpawnedServer, spawnServer, TestClient } from "./helpers.ts";
import { startRedis } from "./redis_server.ts";
import { startServer } from "./server_fixture.ts";

const FILLER_REASON = "Cannot start: name may not hold invisible characters (U+3164)";

/** Opens a socket, says `hello` and resolves with how the server closed it; never welcomed. */
async function refused(wsUrl: string, hello: Msg): Promise<[number, string]> {
  const c = new TestClient(wsUrl);
  try {
    await c.opened;
    c.send({ type: "hello", ...hello });
    const closed = await closedWithin(c);
    assert.equal(c.messages.some((m) => m.type === "welcome"), false, JSON.stringify(hello));
    return [closed.code, closed.reason];
  } finally {
    await c.close();
  }
}

Deno.test("with alice and bob online, аlice, alıce and bοb are refused as name taken; fillers as invisible", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  const bob = await server.connect("bob");
  for (const name of ["\u0430lice", "al\u0131ce", "b\u03bfb", "ALICE", "\u0410LICE"]) {
    assert.deepEqual(await refused(server.wsUrl, { name }), [4009, "name taken"], name);
  }
  assert.deepEqual(await refused(server.wsUrl, { name: "alice\u3164" }), [4000, FILLER_REASON]);
  assert.deepEqual(await refused(server.wsUrl, { name: "\u3164" }), [4000, FILLER_REASON]);
  // A dm is addressed like a name: to the one user holding the key.
  bob.send({ type: "dm", to: "\u0430lice", text: "hi", cid: "d1" });
  const dm = await alice.waitFor((m) => m.type === "dm" && m.cid === "d1");
  assert.equal(dm.to, "alice", "the recipient's name as registered");
  // A Cyrillic name that mimics nobody online is welcome.
  const ivan = await server.connect("\u0418\u0432\u0430\u043d");
  assert.equal(ivan.messages.find((m) => m.type === "welcome")?.name, "Иван");
});

Deno.test("with --jwt-secret, a token whose sub is аdmin is refused while admin is online", async () => {
  const secret = "lookalike-test-secret";
  const server = await spawnServer(["--port", "0"], { env: { CHAT_JWT_SECRET: secret } });
  const clients: TestClient[] = [];
  try {
    const token = (sub: string) =>
      signJwt({ sub, exp: Math.floor(Date.now() / 1000) + 600 }, secret);
    const admin = await TestClient.connect(server.wsUrl, "x", { token: await token("admin") });
    clients.push(admin);
    assert.equal(admin.messages.find((m) => m.type === "welcome")?.name, "admin");
    assert.deepEqual(
      await refused(server.wsUrl, { token: await token("\u0430dmin") }),
      [4009, "name taken"],
    );
    assert.deepEqual(
      await refused(server.wsUrl, { token: await token("admin\u3164") }),
      [4001, "token names an invalid name"],
    );
    // The lookalike did not take the name over: admin is still connected.
    assert.equal(admin.socket.readyState, WebSocket.OPEN);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
});

const redis = await startRedis();
await redis?.stop();

Deno.test({
  name: `with --redis and --password, аlice is refused on alice's instance and on another${
    redis === null ? " (skipped: no redis-server)" : ""
  }`,
  ignore: redis === null,
  async fn() {
    const shared = await startRedis();
    if (shared === null) throw new Error("Cannot start redis-server");
    const servers: SpawnedServer[] = [];
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        servers.push(
          await spawnServer(["--port", "0", "--redis", shared.url], {
            env: { CHAT_PASSWORD: "pw" },
          }),
        );
      }
      const [a, b] = servers;
      clients.push(await TestClient.connect(a.wsUrl, "alice", { password: "pw" }));
      const lookalike = { name: "\u0430lice", password: "pw" };
      assert.deepEqual(await refused(a.wsUrl, lookalike), [4009, "name taken"]);
      // The account lives in Redis: on B too the lookalike meets alice's account, not only her claim.
      assert.deepEqual(await refused(b.wsUrl, lookalike), [4009, "name taken"]);
      assert.deepEqual(
        await refused(b.wsUrl, { name: "alice\u3164", password: "pw" }),
        [4000, FILLER_REASON],
      );
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(servers.map((s) => s.stop()));
      await shared.stop();
    }
  },
});
