/**
 * Large rooms over real sockets, with the crowd in its own process (tests/large_room_crowd.ts):
 * 2000 members join one room at once; `joined` stays bounded and carries the count, `members`
 * pages through everyone, presence past the threshold arrives batched; then the server restarts
 * and every member reconnects at once with `since`, and each gets what it missed exactly once.
 * Once on one instance and once on two instances sharing Redis.
 */
import assert from "node:assert/strict";
import { type Msg, type SpawnedServer, spawnServer, TestClient, within } from "./helpers.ts";
import { startRedis } from "./redis_server.ts";
import { PRESENCE_BATCH_MEMBERS } from "../ops/limits.ts";
import { MAX_JOINED_MEMBERS } from "../protocol/protocol.ts";

/** Members in the crowd. */
const CROWD = 2000;
/** How long the crowd may take to join (and to rejoin after a restart), in ms. */
const JOIN_MS = 60_000;
/** Flags that let one loopback address open the whole crowd at once. */
const OPEN_DOOR = [
  "--rate-limit",
  "off",
  "--handshake-rate",
  "off",
  "--max-connections-per-ip",
  "0",
  "--max-pending-per-ip",
  "0",
  "--max-pending-connections",
  "10000",
  "--log-level",
  "warn",
];

/** The crowd process: its JSON lines in order, and a way to send it commands. */
function crowd(port: number, n: number, prefix: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      new URL("large_room_crowd.ts", import.meta.url).pathname,
      String(port),
      "general",
      String(n),
      prefix,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const events: Msg[] = [];
  const waiters: (() => void)[] = [];
  void (async () => {
    let text = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      let nl;
      while ((nl = text.indexOf("\n")) >= 0) {
        events.push(JSON.parse(text.slice(0, nl)));
        text = text.slice(nl + 1);
        waiters.splice(0).forEach((w) => w());
      }
    }
  })();
  const writer = child.stdin.getWriter();
  let seen = 0;
  return {
    /** The next event the crowd prints. */
    async next(what: string): Promise<Msg> {
      while (events.length <= seen) {
        await within(`the crowd: ${what}`, new Promise<void>((r) => waiters.push(r)), JOIN_MS);
      }
      return events[seen++];
    },
    send: (command: string) => writer.write(new TextEncoder().encode(command + "\n")),
    async stop() {
      await writer.write(new TextEncoder().encode("exit\n")).catch(() => {});
      await writer.close().catch(() => {});
      await child.status;
    },
  };
}

/** Sends `texts` to the room and waits for each echo. */
async function sayAll(client: TestClient, texts: string[]): Promise<void> {
  for (const text of texts) {
    const from = client.messages.length;
    client.send({ type: "say", room: "general", text });
    await client.waitFor((m) => m.type === "message" && m.text === text, 10_000, from);
  }
}

/** Pages through the room's members with `members`; every name in order. */
async function allMembers(client: TestClient): Promise<string[]> {
  const names: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await client.request(
      { type: "members", room: "general", limit: 500, ...(after ? { after } : {}) },
      (m) => m.type === "members",
    );
    names.push(...page.members);
    if (page.next === undefined) return names;
    after = page.next;
  }
}

async function joined(url: string, name: string, resume?: string): Promise<TestClient> {
  const c = await TestClient.connect(url, name, resume ? { resume } : {});
  await c.request({ type: "join", room: "general" }, (m) => m.type === "joined");
  return c;
}

interface Instance {
  server: SpawnedServer;
  args: string[];
}

async function start(args: string[]): Promise<Instance> {
  return { server: await spawnServer(["--port", "0", ...OPEN_DOOR, ...args]), args };
}

/**
 * The scenario on `instances` (the crowd split evenly across them): join, check presence and
 * paging, restart the first instance while the last keeps talking, rejoin with `since`.
 */
async function scenario(instances: Instance[]): Promise<void> {
  const [first] = instances;
  const last = instances[instances.length - 1];
  const watcher = await joined(first.server.wsUrl, "watcher");
  const sender = await joined(last.server.wsUrl, "sender");
  const share = CROWD / instances.length;
  const crowds = instances.map((inst, i) => crowd(inst.server.port, share, `c${i}x`));
  const crowdDone = crowds.map((c) => c.stop);
  try {
    for (const c of crowds) {
      const j = await c.next("every member joined");
      assert.equal(j.joined, share);
      assert.ok(j.maxNames <= MAX_JOINED_MEMBERS, `joined listed ${j.maxNames} names`);
    }
    // Every joined said how many were in; the room holds the crowd, the watcher and the sender.
    const everyone = await allMembers(watcher);
    assert.equal(everyone.length, CROWD + 2);
    assert.equal(new Set(everyone).size, CROWD + 2);
    const page = await watcher.request(
      { type: "members", room: "general" },
      (m) => m.type === "members",
    );
    assert.equal(page.count, CROWD + 2);
    // Past the threshold the watcher heard batches, not one line per arrival.
    const joinLines = watcher.messages.filter((m) => m.type === "join").length;
    const frames = watcher.messages.filter((m) => m.type === "presence");
    assert.ok(joinLines <= PRESENCE_BATCH_MEMBERS, `${joinLines} join lines`);
    assert.ok(frames.length >= 1, "presence frames arrived");
    assert.ok(frames.length < 100, `${frames.length} presence frames for ${CROWD} arrivals`);

    await sayAll(sender, ["a1", "a2", "a3", "a4", "a5"]);
    // The first instance restarts; the others keep talking meanwhile.
    await first.server.stop();
    if (instances.length === 1) {
      first.server = await spawnServer(["--port", "0", ...OPEN_DOOR, ...first.args]);
      const again = await joined(first.server.wsUrl, "sender", sender.messages[0].resume);
      await sayAll(again, ["b1", "b2", "b3", "b4", "b5"]);
      await crowds[0].send(`reconnect ${first.server.port}`);
      const back = await crowds[0].next("every member rejoined");
      assert.equal(back.joined, share);
      await sayAll(again, ["c1", "c2", "c3", "c4", "c5"]);
      await again.close();
    } else {
      await sayAll(sender, ["b1", "b2", "b3", "b4", "b5"]);
      first.server = await spawnServer(["--port", "0", ...OPEN_DOOR, ...first.args]);
      await crowds[0].send(`reconnect ${first.server.port}`);
      const back = await crowds[0].next("every member rejoined");
      assert.equal(back.joined, share);
      await sayAll(sender, ["c1", "c2", "c3", "c4", "c5"]);
    }
    for (const c of crowds) {
      // Every member got seq 1 to 15, each once, in order (live, then history after the restart).
      let report: Msg = {};
      for (let tries = 0; tries < 50; tries++) {
        await c.send("report");
        report = await c.next("its report");
        if (report.lastSeqs.length === 1 && report.lastSeqs[0] === 15) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(report.broken, 0, report.examples.join("\n"));
      assert.deepEqual(report.firstSeqs, [1]);
      assert.deepEqual(report.lastSeqs, [15]);
      assert.equal(report.open, share);
    }
  } finally {
    await Promise.all(crowdDone.map((stop) => stop()));
    await watcher.close().catch(() => {});
    await sender.close().catch(() => {});
  }
}

Deno.test({
  name:
    "2000 members join one room at once: bounded joined, paged members, batched presence; a restart loses and doubles nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const inst = await start(["--data", `${dir}/chat.db`]);
    try {
      await scenario([inst]);
    } finally {
      await inst.server.stop().catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const probe = await startRedis();
await probe?.stop();

Deno.test({
  name: `with --redis: the same on two instances, the crowd split across them${
    probe === null ? " (skipped: no redis-server)" : ""
  }`,
  ignore: probe === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const redis = await startRedis();
    if (redis === null) throw new Error("Cannot start redis-server");
    const a = await start(["--redis", redis.url]);
    const b = await start(["--redis", redis.url]);
    try {
      await scenario([a, b]);
    } finally {
      await Promise.all([a.server.stop().catch(() => {}), b.server.stop().catch(() => {})]);
      await redis.stop();
    }
  },
});
