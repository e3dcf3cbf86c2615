/**
 * Measures the history stores: append throughput and per-call latency by batch size, with
 * SQLite's synchronous FULL and NORMAL against the in-memory baseline, then the cost of a
 * 1000-message read, a prune chunk and a backup. Prints Markdown tables.
 *
 * Run: `deno run -A bench/store_bench.ts [--dir DIR]` (files go in a temp dir under DIR, default
 * the system temp dir; use the disk the server will use). About 20 s. Every store call is
 * synchronous, so an append's latency is also how long it stalls the event loop.
 */
import { parseArgs } from "node:util";
import { MemoryStore, type NewMessage, type Store } from "../store/store.ts";
import { DEFAULT_PRUNE_CHUNK_ROWS, SqliteStore } from "../store/sqlite_store.ts";

/** How long each (store, batch size) cell appends for, in ms. */
const CELL_BUDGET_MS = 1500;
/** Most messages one cell appends, so fast stores do not build huge files. */
const CELL_MAX_MESSAGES = 100_000;
const BATCH_SIZES = [1, 10, 100, 1000];
/** Rooms the appended messages are spread over. */
const ROOMS = 10;
/** Expired messages prune works through, in chunks of DEFAULT_PRUNE_CHUNK_ROWS. */
const PRUNE_ROWS = 30_000;
const TEXT = "The quick brown fox jumps over the lazy dog, then checks the chat for news. ".repeat(
  2,
);

interface Kind {
  label: string;
  open(path: string): Store;
}

const KINDS: Kind[] = [
  { label: "memory", open: () => new MemoryStore() },
  { label: "sqlite FULL", open: (p) => SqliteStore.open(p, { synchronous: "full" }) },
  { label: "sqlite NORMAL", open: (p) => SqliteStore.open(p, { synchronous: "normal" }) },
  {
    label: "sqlite FULL, max 1000/room",
    open: (p) => SqliteStore.open(p, { retention: { maxMessagesPerRoom: 1000 } }),
  },
];

let next = 0;
function batchOf(size: number, ts = Date.now()): NewMessage[] {
  return Array.from({ length: size }, () => {
    const i = next++;
    const m: NewMessage = { room: `room${i % ROOMS}`, from: `user${i % 50}`, text: TEXT, ts };
    if (i % 2 === 0) m.cid = `c${i}`;
    return m;
  });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function ms(x: number): string {
  return x < 1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(1);
}

function sync<T>(value: T | Promise<T>): T {
  if (value instanceof Promise) throw new Error("Cannot benchmark: the store answered async");
  return value;
}

/** Times `fn` `n` times; returns the sorted durations in ms. */
function timeEach(n: number, fn: (i: number) => void): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn(i);
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

const args = parseArgs({ options: { dir: { type: "string" } } });
const dir = await Deno.makeTempDir({ dir: args.values.dir, prefix: "store_bench_" });
try {
  console.log(`Deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch}, files in ${dir}\n`);
  console.log("## Append\n");
  console.log("| store | batch | messages/s | appends | p50 ms | p99 ms | max ms |");
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const kind of KINDS) {
    for (const size of BATCH_SIZES) {
      const path = `${dir}/append-${KINDS.indexOf(kind)}-${size}.db`;
      const store = kind.open(path);
      for (let i = 0; i < 5; i++) sync(store.append(batchOf(size))); // warm up
      const latencies: number[] = [];
      const start = performance.now();
      let messages = 0;
      while (performance.now() - start < CELL_BUDGET_MS && messages < CELL_MAX_MESSAGES) {
        const batch = batchOf(size);
        const t = performance.now();
        sync(store.append(batch));
        latencies.push(performance.now() - t);
        messages += size;
      }
      const elapsed = performance.now() - start;
      await store.close();
      latencies.sort((a, b) => a - b);
      console.log(
        `| ${kind.label} | ${size} | ${
          Math.round(messages / elapsed * 1000)
        } | ${latencies.length} | ` +
          `${ms(quantile(latencies, 0.5))} | ${ms(quantile(latencies, 0.99))} | ${
            ms(latencies.at(-1)!)
          } |`,
      );
    }
  }

  console.log("\n## Read, prune and backup (SQLite FULL)\n");
  console.log("| operation | runs | p50 ms | max ms |");
  console.log("|---|---:|---:|---:|");
  const path = `${dir}/other.db`;
  const now = Date.now();
  const retention = { maxAgeMs: 60_000 };
  const filler = SqliteStore.open(path, { retention });
  // Expired rows spread over the rooms, then 20k fresh ones that reads and prune leave alone.
  for (let i = 0; i < PRUNE_ROWS; i += 1000) filler.append(batchOf(1000, now - 3_600_000));
  for (let i = 0; i < 20_000; i += 1000) filler.append(batchOf(1000, now));
  filler.close();
  const row = (label: string, runs: number[]) =>
    console.log(`| ${label} | ${runs.length} | ${ms(quantile(runs, 0.5))} | ${ms(runs.at(-1)!)} |`);
  /** Prunes `calls` times (or until done) and prints the time per call. */
  const pruneRow = (store: SqliteStore, chunk: number, calls: number) => {
    const times: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t = performance.now();
      const n = store.prune(now);
      if (n === 0) break;
      times.push(performance.now() - t);
    }
    row(`prune chunk of ${chunk} rows`, times.sort((a, b) => a - b));
  };
  // First a few chunks at 5000 rows, for comparison with the default.
  const big = SqliteStore.open(path, { retention, pruneChunkRows: 5000 });
  pruneRow(big, 5000, 3);
  big.close();

  const store = SqliteStore.open(path, { retention });
  row(
    "read 1000, oldest first (`after`)",
    timeEach(20, (i) => store.read(`room${i % ROOMS}`, { after: 100, limit: 1000 })),
  );
  row(
    "read 1000, newest (`newest: true`)",
    timeEach(20, (i) => store.read(`room${i % ROOMS}`, { newest: true, limit: 1000 })),
  );
  row("bounds", timeEach(200, (i) => store.bounds(`room${i % ROOMS}`)));
  pruneRow(store, DEFAULT_PRUNE_CHUNK_ROWS, Infinity);
  row("prune with nothing expired", timeEach(50, () => store.prune(now)));
  const recent = timeEach(5, () => store.recentWithCid(now - 1));
  row(`recentWithCid (${store.recentWithCid(now - 1).length} rows)`, recent);
  const bytes = (await Deno.stat(path)).size + (await Deno.stat(`${path}-wal`)).size;
  const backups: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await store.backup(`${dir}/backup.db`);
    backups.push(performance.now() - t);
  }
  row(`backup (${(bytes / 1e6).toFixed(1)} MB db+wal)`, backups.sort((a, b) => a - b));
  store.close();
} finally {
  await Deno.remove(dir, { recursive: true });
}
