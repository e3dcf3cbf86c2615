/**
 * Refused input over real sockets (issue 14, item 2): a connection that sends malformed frames as
 * fast as it can is closed with 4029 within a bound, and while such clients keep coming back the
 * server still answers another member's say promptly. The second test runs the server and the
 * flooder as their own processes, so neither shares the measuring event loop.
 */
import assert from "node:assert/strict";
import { FLOOD_REJECTIONS } from "../client.ts";
import { sleep, spawnServer, TestClient } from "./helpers.ts";
import { join, received, startServer } from "./server_fixture.ts";

/** How long a client flooding with malformed frames may stay connected, in ms. */
const FLOOD_CLOSE_BOUND_MS = 2000;

Deno.test("101 malformed frames within a minute: each is answered, then the socket closes with 4029", async () => {
  const clock = { now: 1_700_000_000_000 }; // frozen: no token refills
  await using server = await startServer({ clientNow: () => clock.now });
  const mallory = await server.connect("mallory");
  for (let i = 1; i <= FLOOD_REJECTIONS + 1; i++) {
    mallory.send(i % 2 ? JSON.stringify({ type: "nope", cid: `n${i}` }) : "{}");
  }
  const closed = await Promise.race([mallory.closed, sleep(FLOOD_CLOSE_BOUND_MS).then(() => null)]);
  assert.ok(closed !== null, "still open");
  assert.deepEqual([closed.code, closed.reason], [4029, "kept flooding"]);
  const errors = received(mallory, "error");
  assert.equal(errors.length, FLOOD_REJECTIONS + 1, "the last refusal is sent before the close");
  // Each took a control token (burst 100): the 101st found none left.
  assert.deepEqual(
    new Set(errors.slice(0, -1).map((e) => e.code)),
    new Set(["bad_request", "unknown_type"]),
  );
  assert.deepEqual([errors.at(-1)!.code, errors.at(-1)!.cid], ["rate_limited", "n101"]);
});

Deno.test("a socket sending malformed frames as fast as it can is closed within 2 s, after 101 refusals", async () => {
  await using server = await startServer();
  const mallory = await server.connect("mallory");
  const start = Date.now();
  let sent = 0;
  while (
    mallory.socket.readyState === WebSocket.OPEN && Date.now() - start < FLOOD_CLOSE_BOUND_MS
  ) {
    for (let i = 0; i < 500; i++) mallory.socket.send(i % 2 ? "{}" : '{"type":"nope"}');
    sent += 500;
    await sleep(0);
  }
  const closed = await Promise.race([mallory.closed, sleep(FLOOD_CLOSE_BOUND_MS).then(() => null)]);
  assert.ok(closed !== null, `still open after ${sent} malformed frames`);
  assert.ok(Date.now() - start < FLOOD_CLOSE_BOUND_MS, `closed after ${Date.now() - start} ms`);
  // The server's side (the peer, still writing, may see a reset instead of the close frame).
  assert.equal(server.hub.stats.disconnects.get("rate_limited"), 1);
  const refused = [...server.hub.stats.rejected.values()].reduce((a, b) => a + b, 0);
  assert.equal(refused, FLOOD_REJECTIONS + 1);
});

/** Flooders spawned for the round-trip test, in ms of flooding. */
const FLOOD_MS = 3000;
/** The slowest say round trip allowed while flooders come and go, in ms. */
const MAX_SAY_ROUND_TRIP_MS = 150;

Deno.test("while clients flood with malformed frames and reconnect, another member's say round trip stays under 150 ms", async () => {
  const server = await spawnServer(["--port", "0"]);
  const flooders: Deno.ChildProcess[] = [];
  const outputs: Promise<Deno.CommandOutput>[] = [];
  try {
    const bob = await TestClient.connect(server.wsUrl, "bob");
    await join(bob, "general");
    for (let i = 0; i < 2; i++) {
      flooders.push(
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-net=127.0.0.1",
            new URL("flooder.ts", import.meta.url).pathname,
            server.wsUrl,
            String(FLOOD_MS),
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "inherit",
        }).spawn(),
      );
      outputs.push(flooders.at(-1)!.output());
    }
    await sleep(500); // the flooders' start-up
    const trips: number[] = [];
    const until = Date.now() + FLOOD_MS - 1000;
    for (let i = 0; Date.now() < until; i++) {
      const t0 = performance.now();
      await bob.request(
        { type: "say", room: "general", text: `ping ${i}`, cid: `p${i}` },
        (m) => m.cid === `p${i}`,
      );
      trips.push(performance.now() - t0);
      await sleep(50);
    }
    trips.sort((a, b) => a - b);
    assert.ok(trips.length >= 10, `only ${trips.length} round trips measured`);
    assert.ok(
      trips.at(-1)! < MAX_SAY_ROUND_TRIP_MS,
      `say round trips (ms) ${trips.map((t) => t.toFixed(0)).join(" ")}`,
    );
    const tallies = (await Promise.all(outputs)).map((o) =>
      JSON.parse(new TextDecoder().decode(o.stdout).trim())
    );
    for (const tally of tallies) {
      // Each flooder was closed as flooding, and heard no more than the flood window allows.
      assert.ok(tally.closedByServer >= 1, `a flooder was never closed: ${JSON.stringify(tally)}`);
      assert.ok(
        tally.replies <= tally.connections * (FLOOD_REJECTIONS + 1),
        `more replies than refusals allowed: ${JSON.stringify(tally)}`,
      );
    }
    await bob.close();
  } finally {
    for (const f of flooders) {
      try {
        f.kill("SIGKILL");
      } catch { /* exited */ }
    }
    await Promise.allSettled(outputs);
    await server.stop();
  }
});
