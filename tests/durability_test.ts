/**
 * Durable history against the real server process and a real SQLite file: nothing acknowledged is
 * lost across a SIGKILL, nothing is doubled by resends, seqs continue across restarts, and after
 * a stop `chat.db` alone holds everything acknowledged.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { spawnServer, TestClient } from "./helpers.ts";
import { closedWithin } from "./helpers.ts";

type Msg = { seq: number; cid?: string; text: string };

/** Reads a room's whole history by paging forward with `after`. */
async function readAll(c: TestClient, room: string): Promise<Msg[]> {
  const joined = await c.request(
    { type: "join", room, since: 0 },
    (m) => m.type === "joined" && m.room === room,
  );
  const all: Msg[] = [...joined.history];
  let more = joined.more === true;
  while (more) {
    const after = all.at(-1)!.seq;
    const page = await c.request(
      { type: "history", room, after, limit: 200 },
      (m) => m.type === "history" && m.room === room,
    );
    all.push(...page.messages);
    more = page.messages.length === 200;
  }
  return all;
}

Deno.test("SIGKILL mid-storm loses no echoed message; resends after restart create no duplicates", async () => {
  const dir = await Deno.makeTempDir();
  const data = `${dir}/chat.db`;
  const args = ["--port", "0", "--data", data, "--rate-limit", "off"];
  try {
    const first = await spawnServer(args);
    const c = await TestClient.connect(first.wsUrl, "writer");
    await c.request({ type: "join", room: "storm" }, (m) => m.type === "joined");
    const echoed = new Map<string, number>(); // cid → seq
    c.socket.addEventListener("message", (e) => {
      for (const line of (e.data as string).split("\n")) {
        const m = JSON.parse(line);
        if (m.type === "message" && m.cid) echoed.set(m.cid, m.seq);
      }
    });
    const sent: string[] = [];
    // Send in bursts until a good share is acknowledged, then kill without warning.
    for (let burst = 0; burst < 400; burst++) {
      for (let i = 0; i < 50; i++) {
        const cid = `c${sent.length}`;
        sent.push(cid);
        c.send({ type: "say", room: "storm", text: `message ${cid}`, cid });
      }
      if (echoed.size >= 2000) break; // kill with this burst still in flight
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal(await first.stop("SIGKILL"), 137);
    await closedWithin(c);
    const acknowledged = new Map(echoed);
    assert.ok(acknowledged.size >= 2000, `only ${acknowledged.size} echoes before the kill`);

    const second = await spawnServer(args);
    const r = await TestClient.connect(second.wsUrl, "writer2");
    const history = await readAll(r, "storm");
    const seqs = history.map((m) => m.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => i + 1),
      "seqs dense and ordered from 1",
    );
    const byCid = new Map<string, number[]>();
    for (const m of history) byCid.set(m.cid!, [...(byCid.get(m.cid!) ?? []), m.seq]);
    for (const [cid, seq] of acknowledged) {
      assert.deepEqual(byCid.get(cid), [seq], `echoed ${cid} present once`);
    }

    // The writer comes back and resends everything it sent: the server must not store any twice.
    // With its session token: the name is its account's, kept in the file like the history.
    const w = await TestClient.connect(second.wsUrl, "writer", { resume: c.messages[0].resume });
    await w.request({ type: "join", room: "storm" }, (m) => m.type === "joined");
    for (const cid of sent) w.send({ type: "say", room: "storm", text: `message ${cid}`, cid });
    const lastCid = sent.at(-1)!;
    await w.waitFor((m) => m.type === "message" && m.cid === lastCid, 20_000);
    await new Promise((res) => setTimeout(res, 100));
    const after = await readAll(r, "storm");
    assert.equal(new Set(after.map((m) => m.cid)).size, after.length, "no cid stored twice");
    assert.equal(after.length, sent.length, "every sent message stored exactly once");
    await w.close();
    await r.close();
    assert.equal(await second.stop(), 0);

    const db = new DatabaseSync(data);
    try {
      const check = db.prepare("PRAGMA integrity_check").get() as { integrity_check: string };
      assert.equal(check.integrity_check, "ok");
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("seqs continue across a graceful restart of the server process", async () => {
  const dir = await Deno.makeTempDir();
  const args = ["--port", "0", "--data", `${dir}/chat.db`];
  try {
    for (const round of [0, 1]) {
      const s = await spawnServer(args);
      const c = await TestClient.connect(s.wsUrl, `round${round}`);
      const joined = await c.request({ type: "join", room: "general" }, (m) => m.type === "joined");
      assert.equal(joined.seq, round * 3);
      for (let i = 0; i < 3; i++) c.send({ type: "say", room: "general", text: `r${round} m${i}` });
      const last = await c.waitFor((m) => m.type === "message" && m.text === `r${round} m2`);
      assert.equal(last.seq, round * 3 + 3);
      await c.close();
      assert.equal(await s.stop("SIGTERM"), 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a text with half an emoji reads back after a restart as it was echoed, and its resend is recognised", async () => {
  const dir = await Deno.makeTempDir();
  const args = ["--port", "0", "--data", `${dir}/chat.db`];
  try {
    let s = await spawnServer(args);
    let c = await TestClient.connect(s.wsUrl, "ann");
    await c.request({ type: "join", room: "general" }, (m) => m.type === "joined");
    const frame = '{"type":"say","room":"general","text":"x\\ud800y","cid":"half"}';
    c.send(frame);
    const echo = await c.waitFor((m) => m.type === "message" && m.cid === "half");
    assert.equal(echo.text, "x\ufffdy");
    await c.close();
    assert.equal(await s.stop("SIGTERM"), 0);

    s = await spawnServer(args);
    c = await TestClient.connect(s.wsUrl, "ann", { resume: c.messages[0].resume });
    const joined = await c.request({ type: "join", room: "general" }, (m) => m.type === "joined");
    assert.deepEqual(joined.history.map((m: Msg) => [m.seq, m.text]), [[echo.seq, echo.text]]);
    c.send(frame); // the resend of a message whose echo was lost
    const again = await c.waitFor((m) => m.type === "message" && m.cid === "half");
    assert.equal(again.seq, echo.seq, "the original comes back, not a second copy");
    await c.close();
    assert.equal(await s.stop("SIGTERM"), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`after a ${signal} during a burst, chat.db alone holds every acknowledged message`, async () => {
    const dir = await Deno.makeTempDir();
    const data = `${dir}/chat.db`;
    try {
      const server = await spawnServer(["--port", "0", "--data", data, "--rate-limit", "off"]);
      const c = await TestClient.connect(server.wsUrl, "writer");
      await c.request({ type: "join", room: "burst" }, (m) => m.type === "joined");
      const acknowledged = new Map<string, number>(); // cid → seq
      c.socket.addEventListener("message", (e) => {
        for (const line of (e.data as string).split("\n")) {
          const m = JSON.parse(line);
          if (m.type === "message" && m.cid) acknowledged.set(m.cid, m.seq);
        }
      });
      let sent = 0;
      // Keep sending until a good share is acknowledged, then stop right after a burst, with it
      // still in flight (the server acknowledges and stores what it received before the stop).
      for (let burst = 0; burst < 400; burst++) {
        for (let i = 0; i < 50; i++) {
          const cid = `c${sent++}`;
          c.send({ type: "say", room: "burst", text: `message ${cid}`, cid });
        }
        if (acknowledged.size >= 1000) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      assert.equal(await server.stop(signal), 0);
      await closedWithin(c);
      assert.ok(acknowledged.size >= 1000, `only ${acknowledged.size} echoes before the stop`);

      // As the README says: after a stop the -wal and -shm files are gone, and a copy of
      // chat.db alone, taken with the server stopped, is complete.
      for (const extra of ["-wal", "-shm"]) {
        await assert.rejects(Deno.stat(`${data}${extra}`), Deno.errors.NotFound, `${extra} left`);
      }
      const copy = `${dir}/copy.db`;
      await Deno.copyFile(data, copy);
      const db = new DatabaseSync(copy, { readOnly: true });
      try {
        const stored = new Map(
          db.prepare("SELECT cid, seq FROM messages WHERE room = 'burst'").all()
            .map((row) => [String(row.cid), Number(row.seq)]),
        );
        for (const [cid, seq] of acknowledged) {
          assert.equal(stored.get(cid), seq, `acknowledged ${cid} is in chat.db with seq ${seq}`);
        }
        assert.equal(db.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
      } finally {
        db.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
