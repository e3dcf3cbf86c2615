/**
 * The behavioural spec every history store must meet, for the store tests to run against each
 * store: MemoryStore and SqliteStore in sqlite_store_test.ts, RedisStore in redis_test.ts.
 *
 * This module registers no test by itself; each `storeSpec` call registers the whole spec for one
 * store.
 */
import assert from "node:assert/strict";
import type { ChatMessage } from "../protocol/protocol.ts";
import type { Appended, NewMessage, ReadRange, RetentionPolicy, Store } from "../store/store.ts";

/** An append's results as stored messages: a store that checks no sender refuses none. */
export function asStored(appended: Appended[]): ChatMessage[] {
  return appended.map((m) => "seq" in m ? m : assert.fail(`refused: ${m.refused}`));
}

/** The seqs of an append's results. */
function seqsOf(appended: Appended[]): number[] {
  return asStored(appended).map((m) => m.seq);
}

/**
 * Makes a fresh, empty store, now or later; `dir` is a temporary directory it may put files in.
 * A network store must start empty too: its own server, or keys no other store uses.
 */
export type StoreFactory<S extends Store = Store> = (
  dir: string,
  retention: RetentionPolicy,
) => S | Promise<S>;

/** Options for {@linkcode storeSpec}. */
export interface StoreSpecOptions {
  /** Register every case as ignored, e.g. when the store's server is not installed. @default false */
  ignore?: boolean;
}

/** Runs `fn` against a fresh store, then closes it and removes its directory. */
export async function withStore<S extends Store>(
  factory: StoreFactory<S>,
  retention: RetentionPolicy,
  fn: (store: S, dir: string) => Promise<void> | void,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "store_test_" });
  let store: S | undefined;
  try {
    store = await factory(dir, retention);
    await fn(store, dir);
  } finally {
    await store?.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A message from "ann" to `room`, with a cid when one is given. */
export function msg(room: string, text: string, ts: number, cid?: string): NewMessage {
  return cid === undefined ? { room, from: "ann", text, ts } : { room, from: "ann", text, ts, cid };
}

/** `n` messages to `room`, texts "t1".."tn", ts 1..n. */
export function many(room: string, n: number, ts = (i: number) => i): NewMessage[] {
  return Array.from({ length: n }, (_, i) => msg(room, `t${i + 1}`, ts(i + 1)));
}

/** The seqs `store` reads from `room` in `range`, oldest first. */
export async function seqs(
  store: Store,
  room: string,
  range: ReadRange = { limit: 1000 },
): Promise<number[]> {
  return (await store.read(room, range)).map((m) => m.seq);
}

// ---------------------------------------------------------------------------------------------
// The spec.

/**
 * Registers the whole spec for one store, each case named `${label} <case>` and run against a
 * fresh store from `factory`.
 *
 * @example
 * ```ts
 * storeSpec("MemoryStore", (_dir, retention) => new MemoryStore({ retention }));
 * ```
 */
export function storeSpec(
  label: string,
  factory: StoreFactory,
  options: StoreSpecOptions = {},
): void {
  const ignore = options.ignore ?? false;
  const test = (name: string, retention: RetentionPolicy, fn: (store: Store) => unknown) =>
    Deno.test({
      name: `${label} ${name}`,
      ignore,
      fn: () => withStore(factory, retention, async (s) => void await fn(s)),
    });

  test(
    "append gives each room its next seq and returns the stored messages in batch order",
    {},
    async (store) => {
      const stored = await store.append([
        { room: "a", from: "Zoë", text: "first", ts: 1000, cid: "c1" },
        { room: "b", from: "bob", text: "other room", ts: 1001 },
        { room: "a", from: "bob", text: "second", ts: 1002 },
      ]);
      assert.deepEqual(stored, [
        { room: "a", seq: 1, from: "Zoë", text: "first", ts: 1000, cid: "c1" },
        { room: "b", seq: 1, from: "bob", text: "other room", ts: 1001 },
        { room: "a", seq: 2, from: "bob", text: "second", ts: 1002 },
      ]);
      assert.equal("cid" in stored[1], false, "a message without cid has no cid key");
      assert.deepEqual(seqsOf(await store.append([msg("a", "third", 1003)])), [3]);
      assert.deepEqual(await store.append([]), []);
    },
  );

  test(
    "read returns every field as appended, and no cid key when there was none",
    {},
    async (store) => {
      await store.append([
        { room: "a", from: "Zoë", text: "héllo 👋\nline two", ts: 1_700_000_000_123, cid: "x-1" },
        { room: "a", from: "bob", text: "plain", ts: 1_700_000_000_124 },
      ]);
      const [m1, m2] = await store.read("a", { limit: 10 });
      assert.equal(m1.room, "a");
      assert.equal(m1.seq, 1);
      assert.equal(m1.from, "Zoë");
      assert.equal(m1.text, "héllo 👋\nline two");
      assert.equal(m1.ts, 1_700_000_000_123);
      assert.equal(m1.cid, "x-1");
      assert.deepEqual(m2, {
        room: "a",
        seq: 2,
        from: "bob",
        text: "plain",
        ts: 1_700_000_000_124,
      });
      assert.equal("cid" in m2, false);
    },
  );

  test("text and cid holding U+0000 come back whole", {}, async (store) => {
    await store.append([msg("a", "before\u0000after", 1, "c\u0000d")]);
    const [m] = await store.read("a", { limit: 1 });
    assert.equal(m.text, "before\u0000after");
    assert.equal(m.cid, "c\u0000d");
    assert.equal((await store.recentWithCid(0))[0].cid, "c\u0000d");
  });

  test("read honours after, before, newest and limit", {}, async (store) => {
    await store.append([...many("a", 10), ...many("b", 3)]);
    const cases: [Parameters<Store["read"]>[1], number[]][] = [
      [{ limit: 3 }, [1, 2, 3]], // no bound: the oldest
      [{ limit: 3, newest: true }, [8, 9, 10]], // no bound and newest: the newest
      [{ after: 4, limit: 3 }, [5, 6, 7]],
      [{ after: 4, limit: 3, newest: true }, [5, 6, 7]], // newest applies only without after
      [{ before: 5, limit: 3 }, [2, 3, 4]], // before alone: the newest below it
      [{ before: 5, limit: 10 }, [1, 2, 3, 4]],
      [{ after: 2, before: 6, limit: 10 }, [3, 4, 5]],
      [{ after: 2, before: 6, limit: 2 }, [3, 4]], // with after: the oldest
      [{ after: 10, limit: 5 }, []],
      [{ before: 1, limit: 5 }, []],
      [{ after: 5, before: 6, limit: 5 }, []],
      [{ limit: 0 }, []],
      [{ limit: 0, newest: true }, []],
    ];
    for (const [range, expected] of cases) {
      assert.deepEqual(await seqs(store, "a", range), expected, JSON.stringify(range));
    }
    assert.deepEqual(await seqs(store, "b"), [1, 2, 3], "rooms do not mix");
    assert.deepEqual(await store.read("nowhere", { limit: 5, newest: true }), []);
  });

  test("bounds is oldest 1, latest 0 for an unknown room and tracks appends", {}, async (store) => {
    assert.deepEqual(await store.bounds("a"), { oldest: 1, latest: 0 });
    await store.append(many("a", 4));
    assert.deepEqual(await store.bounds("a"), { oldest: 1, latest: 4 });
  });

  test("maxMessagesPerRoom keeps only the newest messages and moves oldest up", {
    maxMessagesPerRoom: 3,
  }, async (store) => {
    const stored = await store.append([...many("a", 5), msg("b", "b1", 1)]);
    assert.deepEqual(seqsOf(stored), [1, 2, 3, 4, 5, 1], "all are returned");
    assert.deepEqual(await seqs(store, "a"), [3, 4, 5]);
    assert.deepEqual(await store.bounds("a"), { oldest: 3, latest: 5 });
    await store.append([msg("a", "t6", 6)]);
    assert.deepEqual(await seqs(store, "a"), [4, 5, 6]);
    assert.deepEqual(await seqs(store, "b"), [1]);
  });

  test("prune drops messages older than maxAgeMs and returns how many", {
    maxAgeMs: 1000,
  }, async (store) => {
    await store.append([msg("a", "old", 1000), msg("a", "old", 2000), msg("a", "new", 3000)]);
    await store.append([msg("b", "old", 2500)]);
    assert.equal(await store.prune(3600), 3); // cutoff 2600
    assert.deepEqual(await seqs(store, "a"), [3]);
    assert.deepEqual(await store.bounds("a"), { oldest: 3, latest: 3 });
    assert.deepEqual(
      await store.bounds("b"),
      { oldest: 2, latest: 1 },
      "empty: oldest = latest + 1",
    );
    assert.equal(await store.prune(3600), 0);
    assert.deepEqual(seqsOf(await store.append([msg("b", "again", 3700)])), [2]);
  });

  test("prune without a retention policy removes nothing", {}, async (store) => {
    await store.append(many("a", 3));
    assert.equal(await store.prune(Number.MAX_SAFE_INTEGER), 0);
    assert.deepEqual(await seqs(store, "a"), [1, 2, 3]);
  });

  test(
    "recentWithCid returns messages with a cid at or after sinceTs, oldest first",
    {},
    async (store) => {
      await store.append([
        msg("a", "x", 100, "cx"),
        msg("a", "no cid", 200),
        msg("b", "y", 150, "cy"),
        msg("a", "z", 300, "cz"),
      ]);
      assert.deepEqual(await store.recentWithCid(150), [
        { room: "b", seq: 1, from: "ann", text: "y", ts: 150, cid: "cy" },
        { room: "a", seq: 3, from: "ann", text: "z", ts: 300, cid: "cz" },
      ]);
      assert.deepEqual((await store.recentWithCid(0)).map((m) => m.cid), ["cx", "cy", "cz"]);
      assert.deepEqual(await store.recentWithCid(301), []);
    },
  );

  test("close is safe twice and append after close fails", {}, async (store) => {
    await store.close();
    await store.close();
    await assert.rejects(async () => await store.append([msg("a", "late", 1)]), /Cannot append/);
  });
}
