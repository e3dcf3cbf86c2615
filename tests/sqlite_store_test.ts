/**
 * Specification of the local history stores: MemoryStore and SqliteStore (on a file and on
 * `:memory:`) meet the shared store spec (store_spec.ts), then what only the durable store
 * promises: seqs survive a restart, a failed batch leaves no trace, pruning is bounded and
 * gap-free, the file is in WAL mode and needs no permission beyond the data file, one store at a
 * time holds the file, and damage is reported with the file, the room and what to do.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { MemoryStore } from "../store/store.ts";
import {
  DamagedStoreError,
  DEFAULT_PRUNE_CHUNK_ROWS,
  SqliteStore,
  StoreInUseError,
} from "../store/sqlite_store.ts";
import { damagePage, leafOf, ROOM_MESSAGES, writeHistory } from "./damaged_db.ts";
import { nameKey } from "../protocol/protocol.ts";
import { many, msg, storeSpec } from "./store_spec.ts";

/** Runs `fn` with a temporary directory that is removed afterwards. */
async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sqlite_store_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The shared spec (store_spec.ts), on every local store.

storeSpec("MemoryStore", (_dir, retention) => new MemoryStore({ retention }));
storeSpec(
  "SqliteStore (file)",
  (dir, retention) => SqliteStore.open(`${dir}/chat.db`, { retention }),
);
storeSpec(
  "SqliteStore (:memory:)",
  (_dir, retention) => SqliteStore.open(":memory:", { retention }),
);

// ---------------------------------------------------------------------------------------------
// What only the durable store promises.

Deno.test("SqliteStore continues each room's seqs after close and reopen", () =>
  withDir((dir) => {
    const path = `${dir}/chat.db`;
    const first = SqliteStore.open(path);
    first.append([...many("a", 3), ...many("b", 2)]);
    first.close();
    const again = SqliteStore.open(path);
    try {
      assert.deepEqual(again.bounds("a"), { oldest: 1, latest: 3 });
      assert.deepEqual(again.append([msg("a", "t4", 4), msg("b", "t3", 3)]).map((m) => m.seq), [
        4,
        3,
      ]);
      assert.deepEqual(again.read("a", { limit: 10 }).map((m) => m.text), ["t1", "t2", "t3", "t4"]);
    } finally {
      again.close();
    }
  }));

Deno.test("SqliteStore keeps a room's latest seq after retention removed all its messages", () =>
  withDir((dir) => {
    const path = `${dir}/chat.db`;
    const first = SqliteStore.open(path, { retention: { maxAgeMs: 10 } });
    first.append(many("a", 3));
    assert.equal(first.prune(1000), 3);
    first.close();
    const again = SqliteStore.open(path, { retention: { maxAgeMs: 10 } });
    try {
      assert.deepEqual(again.bounds("a"), { oldest: 4, latest: 3 });
      assert.deepEqual(again.read("a", { limit: 10 }), []);
      assert.deepEqual(again.append([msg("a", "back", 2000)]).map((m) => m.seq), [4]);
    } finally {
      again.close();
    }
  }));

Deno.test("SqliteStore stores nothing and uses up no seq when any message of a batch fails", () =>
  withDir((dir) => {
    const path = `${dir}/chat.db`;
    const store = SqliteStore.open(path);
    store.append([msg("a", "kept", 1)]);
    // ts is a STRICT INTEGER column: the third message fails after two rows were inserted.
    assert.throws(
      () => store.append([msg("a", "lost", 2), msg("b", "lost", 2), msg("a", "bad ts", 2.5)]),
      /^Error: Cannot append: cannot store REAL value in INTEGER column messages\.ts/,
    );
    assert.deepEqual(store.read("a", { limit: 10 }).map((m) => m.text), ["kept"]);
    assert.deepEqual(store.bounds("a"), { oldest: 1, latest: 1 });
    assert.deepEqual(store.bounds("b"), { oldest: 1, latest: 0 });
    assert.deepEqual(store.append([msg("a", "next", 3), msg("b", "first", 3)]).map((m) => m.seq), [
      2,
      1,
    ]);
    store.close();
    const again = SqliteStore.open(path);
    try {
      assert.deepEqual(again.read("a", { limit: 10 }).map((m) => m.text), ["kept", "next"]);
      assert.deepEqual(again.bounds("b"), { oldest: 1, latest: 1 });
    } finally {
      again.close();
    }
  }));

Deno.test("SqliteStore deletes at most pruneChunkRows per prune call, 1000 by default", () =>
  withDir((dir) => {
    const chunk = 100;
    const store = SqliteStore.open(`${dir}/chat.db`, {
      retention: { maxAgeMs: 1000 },
      pruneChunkRows: chunk,
    });
    try {
      store.append(
        Array.from({ length: 2 * chunk + 23 }, (_, i) => msg(["a", "b", "c"][i % 3], "x", 1)),
      );
      const returns = [store.prune(5000), store.prune(5000), store.prune(5000), store.prune(5000)];
      assert.deepEqual(returns, [chunk, chunk, 23, 0]);
      for (const room of ["a", "b", "c"]) {
        const { oldest, latest } = store.bounds(room);
        assert.equal(oldest, latest + 1, `${room} is empty`);
      }
    } finally {
      store.close();
    }
    const byDefault = SqliteStore.open(":memory:", { retention: { maxAgeMs: 1000 } });
    try {
      byDefault.append(many("a", DEFAULT_PRUNE_CHUNK_ROWS + 1));
      assert.deepEqual([byDefault.prune(5000), byDefault.prune(5000)], [
        DEFAULT_PRUNE_CHUNK_ROWS,
        1,
      ]);
    } finally {
      byDefault.close();
    }
  }));

Deno.test("SqliteStore catches up a lowered maxMessagesPerRoom in bounded prune calls, without gaps", () =>
  withDir((dir) => {
    const path = `${dir}/chat.db`;
    const chunk = 100;
    const first = SqliteStore.open(path);
    first.append([...many("big", 20), ...many("small", 3), ...many("huge", chunk + 10)]);
    first.close();

    const store = SqliteStore.open(path, {
      retention: { maxMessagesPerRoom: 5 },
      pruneChunkRows: chunk,
    });
    try {
      // Until prune catches up, an append drops only as many as it adds, from the oldest.
      store.append([msg("big", "t21", 21)]);
      assert.deepEqual(store.bounds("big"), { oldest: 2, latest: 21 });
      assert.equal(store.read("big", { limit: 100 }).length, 20);

      // big: 15 over; huge: chunk + 5 over.
      assert.deepEqual([store.prune(0), store.prune(0), store.prune(0)], [chunk, 20, 0]);
      assert.deepEqual(store.read("big", { limit: 100 }).map((m) => m.seq), [17, 18, 19, 20, 21]);
      assert.deepEqual(store.bounds("huge"), { oldest: chunk + 6, latest: chunk + 10 });
      assert.deepEqual(
        store.bounds("small"),
        { oldest: 1, latest: 3 },
        "within the limit: untouched",
      );
    } finally {
      store.close();
    }
  }));

Deno.test("SqliteStore age pruning leaves no gap when the clock stepped back", () =>
  withDir((dir) => {
    const store = SqliteStore.open(`${dir}/chat.db`, { retention: { maxAgeMs: 100 } });
    try {
      // seq 3 was stamped after a clock step back; it is older than seq 2.
      store.append([
        msg("a", "t1", 100),
        msg("a", "t2", 200),
        msg("a", "t3", 50),
        msg("a", "t4", 300),
      ]);
      assert.equal(store.prune(250), 3); // cutoff 150: seq 1 and 3 expired, so 2 goes too
      assert.deepEqual(store.read("a", { limit: 10 }).map((m) => m.seq), [4]);
      assert.deepEqual(store.bounds("a"), { oldest: 4, latest: 4 });
    } finally {
      store.close();
    }
  }));

Deno.test("SqliteStore runs in WAL mode with the synchronous level asked for", () =>
  withDir(async (dir) => {
    const path = `${dir}/chat.db`;
    const full = SqliteStore.open(path);
    assert.deepEqual(full.settings, {
      journalMode: "wal",
      synchronous: "full",
      busyTimeoutMs: 1000,
    });
    full.append([msg("a", "x", 1)]);
    assert.ok((await Deno.stat(`${path}-wal`)).isFile, "the WAL file exists while open");
    full.close();
    const normal = SqliteStore.open(path, { synchronous: "normal", busyTimeoutMs: 50 });
    assert.deepEqual(normal.settings, {
      journalMode: "wal",
      synchronous: "normal",
      busyTimeoutMs: 50,
    });
    normal.close();
    const memory = SqliteStore.open(":memory:");
    assert.equal(memory.settings.journalMode, "memory");
    memory.close();
  }));

Deno.test("SqliteStore writes schema version 1, the name key, and passes integrity_check after a workload", () =>
  withDir((dir) => {
    const path = `${dir}/chat.db`;
    const store = SqliteStore.open(path, { retention: { maxMessagesPerRoom: 50, maxAgeMs: 500 } });
    for (let i = 0; i < 40; i++) {
      store.append(
        Array.from({ length: 25 }, (_, j) => msg(`r${j % 7}`, `m${i}-${j}`, i * 25 + j)),
      );
      if (i % 10 === 9) { while (store.prune(i * 25) > 0); }
    }
    store.append([{ room: "a", from: "ＡＮＮ", text: "fullwidth", ts: 1000 }]);
    store.close();
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      assert.equal(db.prepare("PRAGMA user_version").get()?.user_version, 1);
      assert.equal(db.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
      const key = db.prepare("SELECT from_key FROM messages WHERE room = 'a'").get()?.from_key;
      assert.equal(key, nameKey("ＡＮＮ"));
      assert.equal(key, "ann");
    } finally {
      db.close();
    }
  }));

Deno.test("SqliteStore refuses a file whose schema is newer than the code", () =>
  withDir((dir) => {
    const path = `${dir}/chat.db`;
    const db = new DatabaseSync(path);
    db.exec("PRAGMA user_version = 99");
    db.close();
    assert.throws(() => SqliteStore.open(path), /^Error: Cannot open store: .* schema version 99/);
  }));

Deno.test("SqliteStore refuses a file that is not a database, saying which", () =>
  withDir(async (dir) => {
    const path = `${dir}/notes.txt`;
    await Deno.writeTextFile(path, "these are not the rows you are looking for\n".repeat(100));
    assert.throws(
      () => SqliteStore.open(path),
      (e: Error) => e.message === `Cannot open store: ${path}: file is not a database`,
    );
  }));

Deno.test("SqliteStore refuses every call after close with 'the store is closed'", () => {
  const store = SqliteStore.open(":memory:");
  store.close();
  store.close();
  assert.equal(store.closed, true);
  assert.throws(
    () => store.append([msg("a", "x", 1)]),
    /^Error: Cannot append: the store is closed$/,
  );
  assert.throws(() => store.read("a", { limit: 1 }), /Cannot read: the store is closed/);
  assert.throws(() => store.bounds("a"), /the store is closed/);
  assert.throws(() => store.recentWithCid(0), /the store is closed/);
  assert.throws(() => store.prune(0), /Cannot prune: the store is closed/);
});

Deno.test("SqliteStore backup writes a consistent copy that opens as a store", () =>
  withDir(async (dir) => {
    const store = SqliteStore.open(`${dir}/chat.db`);
    try {
      store.append(many("a", 3));
      await store.backup(`${dir}/copy.db`);
      store.append([msg("a", "after the backup", 4)]);
    } finally {
      store.close();
    }
    const copy = SqliteStore.open(`${dir}/copy.db`);
    try {
      assert.deepEqual(copy.read("a", { limit: 10 }).map((m) => m.text), ["t1", "t2", "t3"]);
      assert.deepEqual(copy.append([msg("a", "t4", 4)]).map((m) => m.seq), [4]);
    } finally {
      copy.close();
    }
  }));

Deno.test("SqliteStore needs read and write permission on the data file and nothing else", () =>
  withDir(async (dir) => {
    const path = `${dir}/chat.db`;
    const script = `${dir}/use_store.ts`;
    const storeUrl = new URL("../store/sqlite_store.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { SqliteStore } from ${JSON.stringify(storeUrl)};
       const store = SqliteStore.open(Deno.args[0]);
       store.append([{ room: "a", from: "ann", text: "hi", ts: 1 }]);
       store.prune(1);
       store.close();
       const again = SqliteStore.open(Deno.args[0], { retention: { maxAgeMs: 1 } });
       const seq = again.append([{ room: "a", from: "ann", text: "hi", ts: 5 }])[0].seq;
       again.prune(10);
       again.close();
       console.log(seq);`,
    );
    const run = (...flags: string[]) =>
      new Deno.Command(Deno.execPath(), {
        // The script lives outside the repository: point it at the repository's import map.
        args: ["run", "--no-prompt", "--no-check", `--config=${CONFIG}`, ...flags, script, path],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    const ok = await run(`--allow-read=${path}`, `--allow-write=${path}`);
    const stderr = new TextDecoder().decode(ok.stderr);
    assert.equal(ok.code, 0, stderr);
    assert.equal(new TextDecoder().decode(ok.stdout).trim(), "2");
    const readOnly = await run(`--allow-read=${path}`);
    assert.notEqual(readOnly.code, 0);
    assert.match(new TextDecoder().decode(readOnly.stderr), /Requires write access/);
  }));

Deno.test("SqliteStore holds its file alone, in this process and others, until it closes", () =>
  withDir(async (dir) => {
    const path = `${dir}/chat.db`;
    const first = SqliteStore.open(path);
    try {
      first.append([msg("a", "x", 1)]);
      assert.throws(
        () => SqliteStore.open(path),
        (e: Error) =>
          e instanceof StoreInUseError && e.path === path &&
          e.message ===
            `Cannot open store: ${path} is in use by another store, perhaps in another process`,
      );
      // The refused open must not have cost the first store its SQLite locks or its file.
      assert.deepEqual(first.append([msg("a", "y", 2)]).map((m) => m.seq), [2]);
      // Another process is refused too, while a plain SQLite reader (an online backup) is not.
      const storeUrl = new URL("../store/sqlite_store.ts", import.meta.url).href;
      const other = await new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          `--config=${CONFIG}`,
          `import { DatabaseSync } from "node:sqlite";
           import { SqliteStore } from ${JSON.stringify(storeUrl)};
           try { SqliteStore.open(${JSON.stringify(path)}); console.log("opened"); }
           catch (e) { console.log(e.name); }
           const reader = new DatabaseSync(${JSON.stringify(path)}, { readOnly: true });
           console.log(reader.prepare("SELECT count(*) AS n FROM messages").get().n);`,
        ],
        stdin: "null",
        stderr: "inherit",
      }).output();
      assert.deepEqual(new TextDecoder().decode(other.stdout).trim().split("\n"), [
        "StoreInUseError",
        "2",
      ]);
    } finally {
      first.close();
    }
    const again = SqliteStore.open(path);
    assert.deepEqual(again.bounds("a"), { oldest: 1, latest: 2 });
    again.close();
  }));

/** The repository's deno.json, for scripts run from a temporary directory. */
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

Deno.test("SqliteStore names damage with the file, the room and the fix, and reports it once per room", () =>
  withDir((dir) => {
    const path = `${dir}/chat.db`;
    writeHistory(path);
    // The leaf holding room a's newest message: both reading a's newest page and appending to a
    // reach it.
    const { page, pageSize } = leafOf(path, "a", ROOM_MESSAGES);
    damagePage(path, page, pageSize);
    const reported: DamagedStoreError[] = [];
    const store = SqliteStore.open(path, { onDamaged: (e) => reported.push(e) });
    try {
      const damaged = (action: string) => (e: unknown) =>
        e instanceof DamagedStoreError && e.path === path && e.room === "a" &&
        e.message === `Cannot ${action}: ${path} is damaged (database disk image is malformed): ` +
            `stop the server, run sqlite3 ${path} "PRAGMA integrity_check" to see what is ` +
            "damaged, and restore the file from a backup";
      for (let i = 0; i < 5; i++) {
        assert.throws(
          () => store.read("a", { limit: 10, newest: true }),
          damaged("read history of room a"),
        );
      }
      assert.throws(() => store.append([msg("a", "more", 2_000_000)]), damaged("append to room a"));
      // Room b's pages are whole: it reads and takes new messages on.
      assert.equal(store.read("b", { limit: 10, newest: true }).length, 10);
      assert.deepEqual(store.append([msg("b", "more", 2_000_000)]).map((m) => m.seq), [
        ROOM_MESSAGES + 1,
      ]);
      assert.deepEqual(reported.map((e) => [e.room, e.message.split(":")[0]]), [
        ["a", "Cannot read history of room a"],
      ]);
    } finally {
      store.close(); // closes and releases the file despite the damage
    }
    SqliteStore.open(path).close(); // so nothing holds it any more
  }));
