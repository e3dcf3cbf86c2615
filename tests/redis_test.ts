/**
 * The Redis building blocks against a real, private redis-server: RedisStore meets the store spec
 * (store_spec.ts) and allocates seqs atomically across instances; the bus fans out between
 * instances and survives a Redis restart; presence unites instances and forgets a dead one within
 * its bound. Every suite skips with a message when no `redis-server` is installed.
 */
import { eventually } from "./helpers.ts";
import assert from "node:assert/strict";
import type { NewMessage, RetentionPolicy } from "../store/store.ts";
import { closeRedis, connectRedis } from "../redis/redis_client.ts";
import { RedisStore } from "../redis/redis_store.ts";
import { type ClusterEvents, RedisBus } from "../redis/redis_bus.ts";
import { type ExpiredMember, RedisPresence } from "../redis/redis_presence.ts";
import { startRedis, type TestRedis } from "./redis_server.ts";
import { asStored, many, msg, seqs, storeSpec, withStore } from "./store_spec.ts";

// One redis-server shared by the store spec and the RedisStore cases like it, each case on keys
// of its own, so they need not start a server each. Started here, outside every test, and stopped
// by the test after the last of them, so the leak checks see it neither opened nor left open by a
// test (a --filter that leaves that test out leaves the server's temporary directory behind).
// Its start is also the probe: without redis-server every test below is registered as ignored,
// with the reason.
const shared = await startRedis();
const SKIP = shared === null;
if (SKIP) {
  console.warn(
    "redis_test.ts: skipping every Redis test: no redis-server on PATH (apt-get install redis-server)",
  );
}

/** `name`, with the reason when the test is skipped. */
function testName(name: string): string {
  return SKIP ? `${name} (skipped: no redis-server)` : name;
}

/** Registers a test that gets a Redis of its own, stopped when it ends. */
function redisTest(name: string, fn: (redis: TestRedis) => Promise<void>): void {
  Deno.test({
    name: testName(name),
    ignore: SKIP,
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

// ---------------------------------------------------------------------------------------------
// RedisStore: the store spec, and what RedisStore promises beyond it, on the shared Redis.

/** A RedisStore on the shared Redis under a key prefix of its own, so it starts empty. */
function freshStore(_dir: string, retention: RetentionPolicy): Promise<RedisStore> {
  if (shared === null) throw new Error("Cannot connect a RedisStore: no redis-server");
  return RedisStore.connect({ url: shared.url, retention, prefix: `t${crypto.randomUUID()}:` });
}

storeSpec(testName("RedisStore"), freshStore, { ignore: SKIP });

/** Registers a RedisStore test run against a fresh store on the shared Redis. */
function storeTest(
  name: string,
  retention: RetentionPolicy,
  fn: (store: RedisStore) => Promise<void>,
): void {
  Deno.test({
    name: testName(`RedisStore ${name}`),
    ignore: SKIP,
    fn: () => withStore(freshStore, retention, fn),
  });
}

// The spec checks the first message field by field; RedisStore rebuilds each message from stream
// fields, so it must also add none, and it writes `cid` only "when present": an empty one must
// still count as present.
storeTest(
  "read returns exactly the messages appended, an empty cid included",
  {},
  async (store) => {
    const batch: NewMessage[] = [
      { room: "a", from: "Zoë", text: "héllo 👋\nline two", ts: 1_700_000_000_123, cid: "x-1" },
      { room: "a", from: "bob", text: "plain", ts: 1_700_000_000_124 },
      { room: "a", from: "eve", text: "empty cid", ts: 1_700_000_000_125, cid: "" },
    ];
    await store.append(batch);
    const read = await store.read("a", { limit: 10 });
    assert.deepEqual(read, batch.map((m, i) => ({ ...m, seq: i + 1 })));
    assert.equal("cid" in read[1], false);
    assert.equal(read[2].cid, "", "an empty cid is still a cid");
  },
);

// Seq bounds become exclusive stream-id ranges; these two edges are not in the spec's table.
storeTest("read treats after 0 and a before past the latest seq as open", {}, async (store) => {
  await store.append([...many("a", 10), ...many("b", 3)]);
  assert.deepEqual(await seqs(store, "a", { after: 0, limit: 2 }), [1, 2]);
  assert.deepEqual(await seqs(store, "a", { before: 100, limit: 2 }), [9, 10]);
});

storeTest("prune walks past its 100-entry batches in one call", { maxAgeMs: 10 }, async (store) => {
  await store.append(Array.from({ length: 250 }, (_, i) => msg("a", `t${i}`, i < 240 ? 0 : 100)));
  assert.equal(await store.prune(50), 240);
  assert.deepEqual(await store.bounds("a"), { oldest: 241, latest: 250 });
});

// The spec asks only that append fails after close; RedisStore refuses every call, and says so.
storeTest("refuses every call after close with 'the store is closed'", {}, async (store) => {
  await store.close();
  await store.close();
  assert.equal(store.closed, true);
  await assert.rejects(
    () => store.append([msg("a", "late", 1)]),
    /^Error: Cannot append: the store is closed$/,
  );
  await assert.rejects(() => store.read("a", { limit: 1 }), /Cannot read: the store is closed/);
  await assert.rejects(() => store.bounds("a"), /the store is closed/);
  await assert.rejects(() => store.recentWithCid(0), /the store is closed/);
  await assert.rejects(() => store.prune(0), /Cannot prune: the store is closed/);
});

Deno.test({
  name: testName("The shared redis-server stops after the last RedisStore test that uses it"),
  ignore: SKIP,
  async fn() {
    await shared?.stop();
  },
});

// ---------------------------------------------------------------------------------------------
// RedisStore: what sharing one Redis between instances adds.

redisTest(
  "A fenced RedisStore stores a message only while its sender's name is held by its instance",
  async (redis) => {
    const store = await RedisStore.connect({ url: redis.url, fence: "me" });
    const raw = await connectRedis(redis.url);
    try {
      // The presence records, as redis_presence.ts writes them: `{instance}\n{name}`.
      await raw.set("chat:name:alice", "me\nalice");
      await raw.set("chat:name:bob", "other\nbob");
      const from = (name: string, text: string) => ({ ...msg("general", text, 1), from: name });
      const result = await store.append([
        from("alice", "mine"),
        from("bob", "frozen instance's"),
        from("carol", "nobody holds it"),
        from("Alice", "mine again, any case"),
      ]);
      assert.deepEqual(result.map((m) => "refused" in m ? m.refused : m.seq), [
        1,
        "elsewhere",
        "unheld",
        2,
      ]);
      assert.deepEqual(await seqs(store, "general"), [1, 2], "nothing refused was stored");
      assert.deepEqual(await store.bounds("general"), { oldest: 1, latest: 2 });
    } finally {
      await closeRedis(raw);
      await store.close();
    }
  },
);

redisTest(
  "Two RedisStores appending concurrently to one room get one gap-free seq sequence",
  async (redis) => {
    const [s1, s2] = await Promise.all([
      RedisStore.connect({ url: redis.url }),
      RedisStore.connect({ url: redis.url }),
    ]);
    try {
      const rounds = 50, batch = 4;
      const work = (store: RedisStore, who: string) =>
        Promise.all(Array.from({ length: rounds }, (_, r) =>
          store.append(
            Array.from(
              { length: batch },
              (_, i) => ({ ...msg("room", `${who}-${r}-${i}`, r), from: who }),
            ),
          )));
      const [a, b] = await Promise.all([work(s1, "one"), work(s2, "two")]);
      const all = asStored([...a.flat(), ...b.flat()]);
      const issued = all.map((m) => m.seq).sort((x, y) => x - y);
      const total = 2 * rounds * batch;
      assert.deepEqual(
        issued,
        Array.from({ length: total }, (_, i) => i + 1),
        "every seq once, none missing",
      );
      for (const batchResult of [...a, ...b]) {
        const s = asStored(batchResult).map((m) => m.seq);
        assert.deepEqual(
          s,
          s.map((_, i) => s[0] + i),
          "a batch's seqs are consecutive (one atomic script)",
        );
      }
      const stored = await s1.read("room", { limit: 1000 });
      assert.deepEqual(stored.map((m) => m.seq), issued);
      const byText = new Map(all.map((m) => [m.text, m.seq]));
      for (const m of stored) {
        assert.equal(
          byText.get(m.text),
          m.seq,
          "the stored entry is the one append reported",
        );
      }
      assert.deepEqual(await s2.bounds("room"), { oldest: 1, latest: total });
    } finally {
      await Promise.all([s1.close(), s2.close()]);
    }
  },
);

redisTest(
  "RedisStore keeps a room's seq when retention emptied it, and survives a lost seq key",
  async (redis) => {
    const store = await RedisStore.connect({ url: redis.url, retention: { maxAgeMs: 10 } });
    const raw = await connectRedis(redis.url);
    try {
      await store.append(many("a", 3));
      assert.equal(await store.prune(1000), 3);
      assert.deepEqual(await store.bounds("a"), { oldest: 4, latest: 3 });
      assert.deepEqual(asStored(await store.append([msg("a", "t4", 2000)])).map((m) => m.seq), [4]);
      // Eviction or an operator could drop the seq key; the stream's last id still rules, even
      // when retention has emptied the stream.
      await raw.del("chat:room:a:seq");
      assert.deepEqual(await store.bounds("a"), { oldest: 4, latest: 4 });
      assert.equal(await store.prune(5000), 1);
      await raw.del("chat:room:a:seq");
      assert.deepEqual(await store.bounds("a"), { oldest: 5, latest: 4 });
      assert.deepEqual(asStored(await store.append([msg("a", "t5", 5001)])).map((m) => m.seq), [5]);
      // And the other way round: the stream gone, the seq key remembers.
      await raw.del("chat:room:a:stream");
      assert.deepEqual(await store.bounds("a"), { oldest: 6, latest: 5 });
      assert.deepEqual(asStored(await store.append([msg("a", "t6", 5002)])).map((m) => m.seq), [6]);
    } finally {
      await closeRedis(raw);
      await store.close();
    }
  },
);

redisTest(
  "RedisStore rejects at once while Redis is down, stores nothing, and works after it is back",
  async (redis) => {
    const store = await RedisStore.connect({ url: redis.url });
    try {
      await store.append(many("a", 2));
      await redis.kill();
      await eventually("the store sees the drop", async () => {
        try {
          await store.bounds("a");
          return false;
        } catch {
          return true;
        }
      });
      const t0 = Date.now();
      await assert.rejects(() => store.append([msg("a", "lost", 3)]));
      await assert.rejects(() => store.read("a", { limit: 5 }));
      assert.ok(Date.now() - t0 < 500, "rejects without waiting for a timeout");
      await redis.restart(); // a fresh, empty Redis: nothing of the rejected append may be there
      await eventually("the store reconnects", async () => {
        try {
          await store.bounds("a");
          return true;
        } catch {
          return false;
        }
      });
      assert.deepEqual(await store.read("a", { limit: 5 }), []);
      assert.deepEqual(asStored(await store.append([msg("a", "after", 4)])).map((m) => m.seq), [1]);
    } finally {
      await store.close();
    }
  },
);

redisTest(
  "RedisStore stores nothing of a batch that Redis refuses (out of memory)",
  async (redis) => {
    const store = await RedisStore.connect({ url: redis.url });
    const raw = await connectRedis(redis.url);
    try {
      await store.append(many("a", 2));
      await raw.config("SET", "maxmemory-policy", "noeviction");
      await raw.config("SET", "maxmemory", "1"); // every write is now over the limit
      await assert.rejects(() => store.append([...many("a", 3), ...many("b", 3)]), /OOM/);
      await raw.config("SET", "maxmemory", "0");
      assert.deepEqual(await store.bounds("a"), { oldest: 1, latest: 2 });
      assert.deepEqual(await store.bounds("b"), { oldest: 1, latest: 0 });
      assert.deepEqual(
        asStored(await store.append([msg("a", "t3", 3)])).map((m) => m.seq),
        [3],
        "no seq used up",
      );
    } finally {
      await closeRedis(raw);
      await store.close();
    }
  },
);

redisTest(
  "RedisStore.connect rejects with the address when Redis is unreachable",
  async (redis) => {
    await redis.stop();
    await assert.rejects(
      () => RedisStore.connect({ url: `redis://:secret@127.0.0.1:${redis.port}` }),
      (e: Error) =>
        e.message.startsWith("Cannot connect to Redis at redis://:***@127.0.0.1:") &&
        !e.message.includes("secret"),
    );
  },
);

// ---------------------------------------------------------------------------------------------
// RedisBus.

/** ClusterEvents that record everything. */
class Recorder implements ClusterEvents {
  lines: { room: string; line: string; origin: string; seq?: number }[] = [];
  directs: { userKey: string; line: string; origin: string }[] = [];
  resyncs: string[] = [];
  health: boolean[] = [];
  onRoomLine(room: string, line: string, origin: string, seq?: number): void {
    this.lines.push(seq === undefined ? { room, line, origin } : { room, line, origin, seq });
  }
  onDirect(userKey: string, line: string, origin: string): void {
    this.directs.push({ userKey, line, origin });
  }
  onResync(room: string): void {
    this.resyncs.push(room);
  }
  onHealth(healthy: boolean): void {
    this.health.push(healthy);
  }
}

redisTest("Two buses see each other's room lines and direct lines", async (redis) => {
  const ra = new Recorder(), rb = new Recorder();
  const a = await RedisBus.connect({ url: redis.url, id: "inst-a", events: ra });
  const b = await RedisBus.connect({ url: redis.url, id: "inst-b", events: rb, echo: false });
  try {
    await a.subscribe("general");
    await a.subscribe("general"); // idempotent
    await b.subscribe("general");
    await b.subscribe("other");
    const line = JSON.stringify({
      type: "message",
      room: "general",
      seq: 7,
      text: "multi\nline is escaped",
    });
    await a.publishRoom("general", line, 7);
    await b.publishRoom("general", '{"type":"typing","room":"general","user":"bob"}');
    await a.publishRoom("other", '{"type":"join","room":"other","user":"ann"}');
    await b.publishDirect("zoë", '{"type":"dm","from":"bob","to":"Zoë","text":"hi"}');
    await eventually(
      "the lines arrive",
      () => ra.lines.length === 2 && rb.lines.length === 2 && ra.directs.length === 1,
    );
    assert.deepEqual(ra.lines, [
      { room: "general", line, origin: "inst-a", seq: 7 },
      {
        room: "general",
        line: '{"type":"typing","room":"general","user":"bob"}',
        origin: "inst-b",
      },
    ]);
    assert.deepEqual(rb.lines, [
      { room: "general", line, origin: "inst-a", seq: 7 },
      { room: "other", line: '{"type":"join","room":"other","user":"ann"}', origin: "inst-a" },
    ], "b does not hear itself (echo: false) and hears rooms it subscribed to");
    assert.deepEqual(ra.directs, [{
      userKey: "zoë",
      line: '{"type":"dm","from":"bob","to":"Zoë","text":"hi"}',
      origin: "inst-b",
    }]);
    assert.deepEqual(rb.directs, [], "echo: false drops b's own direct line too");

    await b.unsubscribe("general");
    await a.publishRoom("general", "after unsubscribe", 8);
    await a.publishRoom("other", "still subscribed");
    await eventually("b hears the other room", () => rb.lines.length === 3);
    assert.equal(rb.lines[2].line, "still subscribed", "nothing from an unsubscribed room");
    assert.ok(a.healthy && b.healthy);
    assert.deepEqual([...ra.health, ...rb.health, ...ra.resyncs, ...rb.resyncs], []);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  await a.close(); // safe twice
});

redisTest(
  "After a Redis restart the bus reconnects, resubscribes, resyncs, and publishes again",
  async (redis) => {
    const ra = new Recorder(), rb = new Recorder();
    const a = await RedisBus.connect({ url: redis.url, id: "inst-a", events: ra });
    const b = await RedisBus.connect({ url: redis.url, id: "inst-b", events: rb });
    const store = await RedisStore.connect({ url: redis.url });
    try {
      await a.subscribe("general");
      await b.subscribe("general");
      await b.subscribe("quiet");
      await b.unsubscribe("quiet");

      await redis.kill();
      await eventually("both buses notice", () => !a.healthy && !b.healthy);
      assert.deepEqual(ra.health, [false]);
      await assert.rejects(() => a.publishRoom("general", "while down"));
      await assert.rejects(() => store.append([msg("general", "while down", 1)]));
      await b.subscribe("late"); // taken while down: subscribed on reconnect, then resynced

      await redis.restart();
      await eventually("both buses are healthy again", () => a.healthy && b.healthy);
      // onHealth(true) comes before onResync (redis_bus.ts), so wait for the resyncs themselves.
      await eventually(
        "both buses resynced",
        () => ra.resyncs.length >= 1 && rb.resyncs.length >= 2,
      );
      assert.deepEqual(ra.health, [false, true]);
      assert.deepEqual(rb.health, [false, true]);
      assert.deepEqual(ra.resyncs, ["general"]);
      assert.deepEqual(
        rb.resyncs.sort(),
        ["general", "late"],
        "every subscribed room, not the unsubscribed one",
      );

      await a.publishRoom("general", "back", 1);
      await a.publishRoom("late", "late line");
      await b.publishDirect("ann", "dm after restart");
      await eventually("lines flow again", () => rb.lines.length === 2 && ra.directs.length === 1);
      assert.deepEqual(rb.lines.map((l) => l.line), ["back", "late line"]);
      // The store has its own connection, which reconnects on its own schedule.
      await eventually(
        "the store reconnects",
        () => store.bounds("general").then(() => true, () => false),
      );
      assert.deepEqual(
        asStored(await store.append([msg("general", "stored again", 2)])).map((m) => m.seq),
        [1],
      );
    } finally {
      await Promise.all([a.close(), b.close(), store.close()]);
    }
  },
);

redisTest(
  "A hung Redis: calls reject after the command timeout, the bus turns unhealthy, both recover",
  async (redis) => {
    const timeouts = { commandTimeoutMs: 300 };
    const rec = new Recorder();
    const bus = await RedisBus.connect({
      url: redis.url,
      id: "inst-a",
      events: rec,
      heartbeatMs: 100,
      ...timeouts,
    });
    const store = await RedisStore.connect({ url: redis.url, ...timeouts });
    try {
      await bus.subscribe("general");
      await store.append(many("general", 2));
      redis.pause();
      const t0 = Date.now();
      await assert.rejects(() => store.append([msg("general", "maybe", 3)]), /timed out/);
      assert.ok(Date.now() - t0 < 1500, "rejects after about the command timeout");
      await eventually("the heartbeat notices", () => !bus.healthy, 3000);
      await assert.rejects(() => bus.publishRoom("general", "while hung"));
      redis.resume();
      await eventually("the bus is back", () => bus.healthy, 5000);
      // onHealth(true) comes before onResync (redis_bus.ts), so wait for the resync itself.
      await eventually("the room is resynced", () => rec.resyncs.length > 0, 5000);
      assert.deepEqual(rec.resyncs, ["general"]);
      // The documented hazard: a timed-out append was sent, so Redis ran it once it woke up.
      assert.deepEqual((await store.read("general", { limit: 10 })).map((m) => m.text), [
        "t1",
        "t2",
        "maybe",
      ]);
      await bus.publishRoom("general", "after", 4);
      await eventually("lines flow again", () => rec.lines.length === 1);
    } finally {
      redis.resume();
      await Promise.all([bus.close(), store.close()]);
    }
  },
);

redisTest("RedisBus refuses a bad instance id", async (redis) => {
  await assert.rejects(
    () => RedisBus.connect({ url: redis.url, id: "has space", events: new Recorder() }),
    /Cannot start the bus: id must be/,
  );
});

// ---------------------------------------------------------------------------------------------
// RedisPresence.

/** Short timings so expiry is testable: dead within 300 ms, swept within 300 + 100 ms. */
const FAST = { ttlMs: 300, refreshMs: 100, sweepMs: 100 };
/** What a timing bound may be over by on a busy two-core machine, in ms (still far under a TTL). */
const MEASURE_SLACK_MS = 300;

redisTest(
  "Presence: members is the union over instances, and leave and clean close remove them",
  async (redis) => {
    const a = await RedisPresence.connect({ url: redis.url, id: "inst-a", ...FAST });
    const b = await RedisPresence.connect({ url: redis.url, id: "inst-b", ...FAST });
    try {
      await a.join("general", "ann");
      await a.join("general", "bob");
      await b.join("general", "Zoë");
      await b.join("other", "Zoë");
      assert.deepEqual((await a.members("general")).sort(), ["Zoë", "ann", "bob"]);
      assert.deepEqual((await b.members("general")).sort(), ["Zoë", "ann", "bob"]);
      assert.deepEqual(
        (await a.rooms()).sort((x, y) => x.room.localeCompare(y.room)),
        [{ room: "general", members: 3 }, { room: "other", members: 1 }],
      );
      await a.leave("general", "bob");
      assert.deepEqual((await b.members("general")).sort(), ["Zoë", "ann"]);
      await b.close(); // clean shutdown: gone at once
      assert.deepEqual(await a.members("general"), ["ann"]);
      assert.deepEqual(await a.rooms(), [{ room: "general", members: 1 }]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
);

redisTest(
  "Presence: publishAs publishes only while this instance holds the sender's name",
  async (redis) => {
    const a = await RedisPresence.connect({ url: redis.url, id: "inst-a", ...FAST });
    const b = await RedisPresence.connect({ url: redis.url, id: "inst-b", ...FAST });
    const sub = await connectRedis(redis.url);
    const heard: string[] = [];
    try {
      sub.on("message", (_channel: string, message: string) => heard.push(message));
      await sub.subscribe("test:direct");
      assert.equal(await a.claimName("ann", "ann"), true);
      assert.equal(await a.publishAs("ann", "test:direct", "from ann on a"), true);
      assert.equal(await b.publishAs("ann", "test:direct", "ann is not b's"), false);
      assert.equal(await a.publishAs("zed", "test:direct", "nobody holds zed"), false);
      await eventually("the published message arrives", () => heard.length > 0);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(heard, ["from ann on a"]);
    } finally {
      await closeRedis(sub);
      await Promise.all([a.close(), b.close()]);
    }
  },
);

redisTest("Presence: a name is unique across instances until released", async (redis) => {
  const a = await RedisPresence.connect({ url: redis.url, id: "inst-a", ...FAST });
  const b = await RedisPresence.connect({ url: redis.url, id: "inst-b", ...FAST });
  try {
    const tries = await Promise.all([a.claimName("zoë", "Zoë"), b.claimName("zoë", "ZOË")]);
    assert.deepEqual(tries.filter((t) => t).length, 1, "exactly one instance wins a race");
    const [winner, loser] = tries[0] ? [a, b] : [b, a];
    assert.equal(
      await winner.claimName("zoë", "Zoë"),
      true,
      "claiming again on the holder is fine",
    );
    assert.equal(await loser.claimName("zoë", "zoë"), false);
    assert.equal((await loser.ownerOf("zoë"))?.instance, winner.id);
    await loser.releaseName("zoë"); // not the holder: no effect
    assert.equal((await a.ownerOf("zoë"))?.instance, winner.id);
    await winner.releaseName("zoë");
    assert.equal(await a.ownerOf("zoë"), null);
    assert.equal(await loser.claimName("zoë", "zoë"), true);
    assert.deepEqual(await winner.ownerOf("zoë"), { instance: loser.id, name: "zoë" });
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

redisTest(
  "Presence: a stopped instance's users and names disappear within ttl + sweep",
  async (redis) => {
    const expired: ExpiredMember[] = [];
    const a = await RedisPresence.connect({
      url: redis.url,
      id: "inst-a",
      ...FAST,
      onExpired: (g) => expired.push(...g),
    });
    const b = await RedisPresence.connect({ url: redis.url, id: "inst-b", ...FAST });
    try {
      await a.join("general", "ann");
      await b.join("general", "bob");
      assert.equal(await b.claimName("bob", "bob"), true);
      assert.equal(await a.claimName("bob", "bob"), false);
      const stopped = Date.now();
      await b.close({ unregister: false }); // as if it crashed: no refresh, no clean-up
      await eventually(
        "bob is no longer a member",
        async () => (await a.members("general")).length === 1,
        2000,
      );
      const invisibleAfter = Date.now() - stopped;
      // The slack is for the polling and a loaded machine (a full parallel run measured 405 ms).
      assert.ok(
        invisibleAfter <= FAST.ttlMs + MEASURE_SLACK_MS,
        `gone from members after ${invisibleAfter} ms`,
      );
      assert.equal(
        await a.claimName("bob", "Bob"),
        true,
        "the dead instance's name is free once it expired",
      );
      await eventually("a sweep reports bob", () => expired.length > 0, 2000);
      const sweptAfter = Date.now() - stopped;
      assert.ok(
        sweptAfter <= FAST.ttlMs + FAST.sweepMs + MEASURE_SLACK_MS,
        `swept after ${sweptAfter} ms`,
      );
      assert.deepEqual(expired, [{ instance: "inst-b", room: "general", name: "bob" }]);
      assert.deepEqual((await a.ownerOf("bob"))?.name, "Bob", "the sweep left a's new claim alone");
      assert.deepEqual(await a.members("general"), ["ann"]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  },
);

redisTest("Presence writes its state back after Redis restarted empty", async (redis) => {
  const lost: string[] = [];
  const a = await RedisPresence.connect({
    url: redis.url,
    id: "inst-a",
    ...FAST,
    onNamesLost: (k) => lost.push(...k),
  });
  try {
    await a.claimName("ann", "ann");
    await a.join("general", "ann");
    await redis.restart();
    await eventually("ann is back", async () => {
      try {
        return (await a.members("general")).length === 1;
      } catch {
        return false;
      }
    });
    assert.deepEqual(await a.ownerOf("ann"), { instance: "inst-a", name: "ann" });
    assert.deepEqual(lost, []);
  } finally {
    await a.close();
  }
});

redisTest(
  "Presence: an instance presumed dead writes itself back and hears of names taken meanwhile",
  async (redis) => {
    const lost: string[] = [];
    const slow = { ttlMs: 10_000, refreshMs: 5_000, sweepMs: 5_000 }; // no timer fires during the test
    const a = await RedisPresence.connect({ url: redis.url, id: "inst-a", ...slow });
    const b = await RedisPresence.connect({
      url: redis.url,
      id: "inst-b",
      ...slow,
      onNamesLost: (k) => lost.push(...k),
    });
    const raw = await connectRedis(redis.url);
    try {
      await b.claimName("bob", "bob");
      await b.claimName("cy", "cy");
      await b.join("general", "bob");
      await b.join("general", "cy");
      await b.leave("general", "cy");
      await raw.del("chat:instance:inst-b"); // as if b had been cut off for longer than the TTL
      assert.equal(await a.sweep(), 1);
      assert.deepEqual(await a.members("general"), []);
      assert.equal(await a.claimName("bob", "Bob"), true);
      await b.refresh();
      assert.deepEqual(await a.members("general"), ["bob"], "b wrote its member back");
      assert.deepEqual(lost, ["bob"], "and learned that a took bob");
      assert.deepEqual(await a.ownerOf("bob"), { instance: "inst-a", name: "Bob" });
      assert.deepEqual(await a.ownerOf("cy"), { instance: "inst-b", name: "cy" });
    } finally {
      await closeRedis(raw);
      await Promise.all([a.close(), b.close()]);
    }
  },
);

redisTest(
  "Presence: starting again with the same id reports what the earlier run left behind",
  async (redis) => {
    const first = await RedisPresence.connect({ url: redis.url, id: "inst-a", ...FAST });
    await first.join("general", "ann");
    await first.claimName("ann", "ann");
    await first.close({ unregister: false }); // a crash and a quick restart, before the key expires
    const expired: ExpiredMember[] = [];
    const again = await RedisPresence.connect({
      url: redis.url,
      id: "inst-a",
      ...FAST,
      onExpired: (g) => expired.push(...g),
    });
    try {
      assert.deepEqual(expired, [{ instance: "inst-a", room: "general", name: "ann" }]);
      assert.deepEqual(await again.members("general"), []);
      assert.equal(await again.ownerOf("ann"), null);
    } finally {
      await again.close();
    }
  },
);

redisTest("Presence refuses a refresh period above half the TTL", async (redis) => {
  await assert.rejects(
    () => RedisPresence.connect({ url: redis.url, id: "x", ttlMs: 1000, refreshMs: 600 }),
    /refreshMs must be at most half of ttlMs/,
  );
});
