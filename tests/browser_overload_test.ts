/**
 * A browser page that falls behind its room is closed with 4008 and comes back by itself: it
 * resumes, rejoins with `since`, and shows every stored message exactly once, in order (issue 12).
 * The server runs with a tiny send budget and room window, so one burst is more than the page may
 * fall behind.
 */
import assert from "node:assert/strict";
import { browserTest, messageTexts } from "./browser_harness.ts";
import { TestClient } from "./helpers.ts";
import { join } from "./server_fixture.ts";

const BURST = 200;

browserTest(
  "A page closed as a slow consumer (4008) rejoins with since and shows every message exactly once",
  async (h) => {
    const alice = await h.open("alice");
    const bob = await TestClient.connect(h.server.wsUrl, "bob");
    await join(bob, "general");
    const texts = Array.from({ length: BURST }, (_, i) => `burst ${i} ${"x".repeat(500)}`);
    for (const [i, text] of texts.entries()) {
      bob.send({ type: "say", room: "general", text, cid: `b${i}` });
    }
    // The server closed the page's socket for falling behind.
    const deadline = Date.now() + 10_000;
    while (!/slow_consumer name=alice .*reason=behind/.test(h.server.output())) {
      assert.ok(Date.now() < deadline, `alice was never evicted\n${h.server.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    bob.socket.close();
    // What the store holds (bob may have been evicted too before all of his burst was read).
    const reader = await TestClient.connect(h.server.wsUrl, "reader");
    const stored = (await join(reader, "general", { since: 0 })).history.map(
      (m: { text: string }) => m.text,
    );
    reader.socket.close();
    assert.ok(stored.length >= 50, `only ${stored.length} stored`);
    assert.deepEqual(stored, texts.slice(0, stored.length), "stored in order");
    const shown = Date.now() + 15_000;
    while ((await messageTexts(alice.page)).length < stored.length) {
      assert.ok(Date.now() < shown, `the page shows ${(await messageTexts(alice.page)).length}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300)); // nothing more (a duplicate) arrives
    assert.deepEqual(await messageTexts(alice.page), stored, "every message once, in order");
    assert.deepEqual(alice.problems, []);
  },
  [
    "--port",
    "0",
    "--data",
    ":memory:",
    "--rate-limit",
    "off",
    "--send-queue-bytes",
    "4096",
    "--room-window-bytes",
    "16384",
  ],
);
