/**
 * Specification of the Redis account store against a real, private redis-server: the shared
 * account store spec (account_store_spec.ts), then what only a shared store promises: two
 * instances see one set of accounts, one name is taken once when both race for it, and an invite's
 * uses are counted exactly across instances. Skips with a message when no `redis-server` is
 * installed.
 */
import assert from "node:assert/strict";
import { closeRedis, connectRedis } from "../redis/redis_client.ts";
import { RedisAccountStore } from "../redis/redis_accounts.ts";
import { startRedis } from "./redis_server.ts";
import { accountStoreSpec } from "./account_store_spec.ts";

// One redis-server for the whole file, each case on a key prefix of its own; started outside every
// test and stopped by the last one, as redis_test.ts does.
const shared = await startRedis();
const SKIP = shared === null;
if (SKIP) {
  console.warn(
    "redis_accounts_test.ts: skipping every Redis test: no redis-server on PATH (apt-get install redis-server)",
  );
}

function testName(name: string): string {
  return SKIP ? `${name} (skipped: no redis-server)` : name;
}

/** Every key under `prefix` with its value, as text. */
async function dumpPrefix(url: string, prefix: string): Promise<string> {
  const client = await connectRedis(url);
  try {
    const keys = await client.keys(`${prefix}*`);
    const out: string[] = [];
    for (const key of keys.sort()) {
      const type = await client.type(key);
      const value = type === "string"
        ? await client.get(key)
        : type === "hash"
        ? await client.hgetall(key)
        : type === "set"
        ? await client.smembers(key)
        : type === "zset"
        ? await client.zrange(key, 0, -1)
        : type;
      out.push(`${key} ${JSON.stringify(value)}`);
    }
    return out.join("\n");
  } finally {
    await closeRedis(client);
  }
}

accountStoreSpec(testName("RedisAccountStore"), async () => {
  if (shared === null) throw new Error("Cannot connect a RedisAccountStore: no redis-server");
  const prefix = `t${crypto.randomUUID()}:`;
  const store = await RedisAccountStore.connect({ url: shared.url, prefix });
  return {
    store,
    dump: () => dumpPrefix(shared.url, prefix),
    dispose: () => store.close(),
  };
}, { ignore: SKIP });

/** Two stores on one prefix, as two server instances would be. */
async function twoInstances(): Promise<[RedisAccountStore, RedisAccountStore]> {
  if (shared === null) throw new Error("Cannot connect a RedisAccountStore: no redis-server");
  const prefix = `t${crypto.randomUUID()}:`;
  return [
    await RedisAccountStore.connect({ url: shared.url, prefix }),
    await RedisAccountStore.connect({ url: shared.url, prefix }),
  ];
}

Deno.test({
  name: testName(
    "RedisAccountStore: two instances racing for one name (and its lookalike) make one account",
  ),
  ignore: SKIP,
  async fn() {
    const [a, b] = await twoInstances();
    try {
      const results = await Promise.all([
        ...Array.from({ length: 5 }, () => a.createAccount({ name: "alice", now: 1 })),
        ...Array.from({ length: 5 }, () => b.createAccount({ name: "\u0430lice", now: 1 })),
      ]);
      assert.equal(results.filter((r) => r.ok).length, 1);
      const winner = results.find((r) => r.ok);
      assert.ok(winner?.ok);
      assert.equal((await b.accountByName("ALICE"))?.id, winner.account.id);
      const s = await a.createSession(winner.account.id, "phone", 2);
      assert.ok(s.ok);
      assert.equal(
        (await b.findSession(s.token))?.account.id,
        winner.account.id,
        "B sees A's session",
      );
      await b.setDisabled(winner.account.id, true);
      assert.equal(await a.findSession(s.token), null, "a disable on B ends the session on A");
    } finally {
      await a.close();
      await b.close();
    }
  },
});

Deno.test({
  name: testName("RedisAccountStore: an invite's uses are counted exactly across instances"),
  ignore: SKIP,
  async fn() {
    const [a, b] = await twoInstances();
    try {
      const admin = await a.createAccount({ name: "root", role: "admin", now: 1 });
      assert.ok(admin.ok);
      const invite = await a.createInvite({
        createdBy: admin.account.id,
        expiresAt: 1_000_000,
        maxUses: 4,
        now: 1,
      });
      assert.ok(invite.ok);
      const uses = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).consumeInvite(invite.token, 2)),
      );
      assert.equal(uses.filter((u) => u.ok).length, 4);
      assert.equal((await b.listInvites())[0].uses, 4);
    } finally {
      await a.close();
      await b.close();
    }
  },
});

Deno.test({
  name: testName("The shared redis-server stops after the last RedisAccountStore test"),
  ignore: SKIP,
  async fn() {
    await shared?.stop();
  },
});
