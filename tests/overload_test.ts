/**
 * Overload without collateral damage (issue 12), over real sockets with the server, the load
 * generator and the room's readers each in its own process: unpaced floods of 64 B, 4 KB and
 * maximum texts, from 1 and from 50 senders, into the default file store (synchronous full). Two
 * fast readers (and every sender) get every message in order with no 4008; a member that never
 * reads gets 4008 within a few seconds; one reading at ~100 KB/s keeps up or gets 4008; the
 * server's peak RSS stays under a stated bound.
 */
import assert from "node:assert/strict";
import { type SpawnedServer, spawnServer } from "./helpers.ts";
import { startRedis, type TestRedis } from "./redis_server.ts";
import type { MemberReport } from "./overload_members.ts";
import { STALL_TIMEOUT_MS } from "../ops/limits.ts";

/** The server's peak resident memory must stay under this, in bytes, whatever the flood. */
const PEAK_RSS_BOUND_BYTES = 400 * 1024 * 1024;
/**
 * A member that never reads is evicted at most this long after the flood ends, in ms (its stall
 * is judged with no traffic; the members process waits STALL_TIMEOUT_MS + 1 s before it reads).
 */
const NEVER_READER_EVICTED_AFTER_MS = STALL_TIMEOUT_MS + 500;
/** The whole scenario's bound, in ms. */
const SCENARIO_BOUND_MS = 60_000;

interface Scenario {
  kind: "64b" | "4kb" | "max";
  senders: number;
  count: number;
  /** Two instances on one Redis: the flood into one, the readers on the other. */
  redis?: boolean;
  /** Members that never read, beyond the one every scenario has. */
  extraNever?: number;
}

/**
 * At least 6 MB per member in each, so a non-reader outgrows the kernel's socket buffers on
 * loopback (about 4 MB) and its send budget (1 MiB).
 */
const SCENARIOS: Scenario[] = [
  { kind: "64b", senders: 1, count: 55_000 },
  { kind: "4kb", senders: 1, count: 2000 },
  { kind: "max", senders: 1, count: 700 },
  { kind: "64b", senders: 50, count: 55_000 },
  { kind: "4kb", senders: 50, count: 2000 },
  { kind: "max", senders: 50, count: 700 },
  { kind: "4kb", senders: 1, count: 2000, redis: true },
  { kind: "4kb", senders: 1, count: 2000, extraNever: 30 },
];

const HERE = new URL(".", import.meta.url).pathname;

/** Runs a Deno script in its own process, collecting its stdout lines. */
function script(name: string, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", HERE + name, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let wake = () => {};
  let errText = "";
  const decoder = new TextDecoder();
  const out = (async () => {
    let buf = "";
    for await (const chunk of child.stdout) {
      buf += decoder.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        wake();
      }
    }
  })();
  const err = (async () => {
    for await (const chunk of child.stderr) errText += decoder.decode(chunk);
  })();
  return {
    /** The next line printed, within `ms`. */
    async line(ms: number): Promise<string> {
      const deadline = Date.now() + ms;
      while (lines.length === 0) {
        if (Date.now() > deadline) {
          throw new Error(`${name}: no output within ${ms} ms\n${errText}`);
        }
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
      return lines.shift()!;
    },
    async end() {
      await Promise.all([out, err, child.status]);
      return errText;
    },
    kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    },
  };
}

/** The server's peak resident set (VmHWM), in bytes. */
async function peakRss(server: SpawnedServer): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${server.process.pid}/status`);
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

// Probe once: without redis-server the --redis scenario is registered as ignored, with the reason.
const probe = await startRedis();
await probe?.stop();

for (const s of SCENARIOS) {
  Deno.test({
    name: `unpaced flood of ${s.count} × ${s.kind} from ${s.senders} sender(s)` +
      `${s.redis ? ", two instances on Redis" : ""}` +
      `${s.extraNever ? `, ${s.extraNever + 1} members that never read` : ""}: readers get all, ` +
      `the non-reader gets 4008, memory bounded`,
    ignore: s.redis === true && probe === null,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const dir = await Deno.makeTempDir();
      const redis: TestRedis | null = s.redis ? await startRedis() : null;
      const common = [
        "--port",
        "0",
        "--rate-limit",
        "off",
        "--max-connections-per-ip",
        "100",
        "--handshake-rate",
        "1000/s,1000",
        "--max-pending-per-ip", // 50 senders connect at once from one address
        "100",
      ];
      // The readers' instance; with Redis the flood goes into another one.
      const server = await spawnServer(
        redis ? [...common, "--redis", redis.url] : [...common, "--data", `${dir}/chat.db`],
      );
      const entry = redis ? await spawnServer([...common, "--redis", redis.url]) : server;
      const members = script("overload_members.ts", [
        String(server.port),
        "flood",
        String(s.count),
        String(SCENARIO_BOUND_MS),
        String(s.extraNever ?? 0),
      ]);
      let flood: ReturnType<typeof script> | null = null;
      try {
        assert.equal(await members.line(15_000), "ready");
        // The senders start as soon as each has joined: only now that the readers are in.
        flood = script("overload_flood.ts", [
          String(entry.port),
          "flood",
          String(s.senders),
          String(s.count),
          s.kind,
        ]);
        const started = Date.now();
        let evictedAt = -1;
        const watch = setInterval(() => {
          if (evictedAt < 0 && /slow_consumer name=never/.test(server.output())) {
            evictedAt = Date.now() - started;
          }
        }, 20);
        const flooded = JSON.parse(await flood.line(SCENARIO_BOUND_MS));
        const floodEnded = Date.now() - started;
        const report = JSON.parse(await members.line(SCENARIO_BOUND_MS)) as {
          fast: MemberReport[];
          never: MemberReport;
          slow: MemberReport;
          others: MemberReport[];
        };
        clearInterval(watch);
        const peak = Math.max(await peakRss(server), await peakRss(entry));
        const log = server.output();
        const context = `flood ${JSON.stringify(flooded)}\nmembers ${JSON.stringify(report)}\n` +
          `peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB\n` +
          log.split("\n").filter((l) => l.includes("slow_consumer")).slice(0, 10).join("\n");

        assert.equal(flooded.acked, Math.ceil(s.count / s.senders) * s.senders, context);
        assert.deepEqual(flooded.closes, {}, `no sender was closed\n${context}`);
        for (const f of report.fast) {
          assert.equal(f.closeCode, null, `a fast reader was closed\n${context}`);
          assert.equal(f.messages, flooded.acked, `a fast reader missed messages\n${context}`);
          assert.ok(f.inOrder, context);
        }
        assert.equal(report.never.closeCode, 4008, context);
        assert.ok(
          evictedAt >= 0 && evictedAt < floodEnded + NEVER_READER_EVICTED_AFTER_MS,
          `evicted at ${evictedAt} ms, the flood ended at ${floodEnded} ms\n${context}`,
        );
        assert.ok(report.never.inOrder, context);
        for (const other of report.others) {
          assert.equal(other.closeCode, 4008, `another non-reader was not closed\n${context}`);
          assert.ok(other.inOrder, context);
        }
        assert.ok(
          report.slow.closeCode === 4008 ||
            (report.slow.closeCode === null && report.slow.messages === flooded.acked),
          `the slow reader neither kept up nor got 4008\n${context}`,
        );
        assert.ok(report.slow.inOrder, context);
        assert.ok(peak < PEAK_RSS_BOUND_BYTES, context);
        assert.doesNotMatch(log, /slow_consumer name=(fast|s\d)/, context);
      } finally {
        members.kill();
        flood?.kill();
        await Promise.all([members.end(), flood?.end()]);
        if (entry !== server) await entry.stop();
        await server.stop();
        await redis?.stop();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
