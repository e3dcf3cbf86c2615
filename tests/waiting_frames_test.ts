/**
 * What the server keeps while it waits, over real sockets: frames sent after the hello while the
 * credentials are checked (MAX_EARLY_FRAMES), and commands for a room whose join is in flight
 * (MAX_HELD_COMMANDS); one more than each is refused as docs/protocol.md says. Both are kept before
 * any cluster call (client.ts, and the top of the hub's command path), so they hold the same with
 * `--redis`; the in-process server here has no cluster.
 */
import assert from "node:assert/strict";
import type { Authenticator } from "../auth/auth.ts";
import { MAX_EARLY_FRAMES } from "../client.ts";
import { MAX_HELD_COMMANDS } from "../hub.ts";
import { MemoryStore, type Store } from "../store/store.ts";
import { closedWithin, eventually, type TestClient } from "./helpers.ts";
import { received, startServer } from "./server_fixture.ts";

/** A check that holds each hello (by name) until the test lets it through. */
function heldAuth() {
  const gates = new Map<string, () => void>();
  const auth: Authenticator = (hello) =>
    new Promise((resolve) => {
      const name = hello.name!;
      gates.set(name, () => resolve({ ok: true, name, verified: false }));
    });
  return { auth, release: (name: string) => gates.get(name)?.(), gates };
}

/** Sends hello and `n` notes to self at once; the welcome cannot come before the test says. */
function helloThen(c: TestClient, name: string, n: number): void {
  c.send({ type: "hello", name });
  for (let i = 1; i <= n; i++) c.send({ type: "dm", to: name, text: `early ${i}`, cid: `e${i}` });
}

Deno.test("frames sent before the welcome: 32 are kept and run after it, the 33rd closes the connection with 4000", async () => {
  assert.equal(MAX_EARLY_FRAMES, 32, "the limit docs/protocol.md states");
  const held = heldAuth();
  await using server = await startServer({ auth: held.auth, rateLimit: null });

  // One too many, while the hello is held: the connection is closed at the 33rd.
  const over = await server.open();
  helloThen(over, "over", MAX_EARLY_FRAMES + 1);
  const closed = await closedWithin(over);
  assert.deepEqual([closed.code, closed.reason], [4000, "too many frames before welcome"]);

  // Exactly the limit, then an oversized frame: it closes with 1009, so the server read past the
  // 32nd without refusing it (frames are handled in order). Deterministic without any sleep.
  const full = await server.open();
  helloThen(full, "full", MAX_EARLY_FRAMES);
  full.send({ type: "dm", to: "full", text: "x".repeat(17 * 1024) });
  assert.equal((await closedWithin(full)).code, 1009);

  // Exactly the limit, let through: the welcome, then every kept frame answered in order.
  const kept = await server.open();
  helloThen(kept, "kept", MAX_EARLY_FRAMES);
  await eventually("the hello to reach the check", () => held.gates.has("kept"));
  held.release("kept");
  await kept.waitFor((m) => m.type === "dm" && m.cid === `e${MAX_EARLY_FRAMES}`);
  assert.equal(kept.messages[0].type, "welcome");
  assert.deepEqual(
    received(kept, "dm").map((m) => m.cid),
    Array.from({ length: MAX_EARLY_FRAMES }, (_, i) => `e${i + 1}`),
  );
  assert.equal(kept.socket.readyState, WebSocket.OPEN);
  for (const name of held.gates.keys()) held.release(name); // the closed ones find no client
});

/** A MemoryStore whose `bounds` (read by every join) waits until `open()`: a join in flight. */
class GatedBounds implements Store {
  #inner = new MemoryStore();
  #open!: () => void;
  #gate = new Promise<void>((resolve) => this.#open = resolve);
  open(): void {
    this.#open();
  }
  append: Store["append"] = (batch) => this.#inner.append(batch);
  read: Store["read"] = (room, range) => this.#inner.read(room, range);
  bounds: Store["bounds"] = async (room) => {
    await this.#gate;
    return this.#inner.bounds(room);
  };
  recentWithCid: Store["recentWithCid"] = (ts) => this.#inner.recentWithCid(ts);
  prune: Store["prune"] = (now) => this.#inner.prune(now);
  close: Store["close"] = () => this.#inner.close();
}

Deno.test("commands sent while a join is in flight: 256 wait and run after it, the 257th is refused with not_in_room", async () => {
  assert.equal(MAX_HELD_COMMANDS, 256, "the limit docs/protocol.md states");
  const store = new GatedBounds();
  await using server = await startServer({ store, rateLimit: null });
  const alice = await server.connect("alice");
  alice.send({ type: "join", room: "general" });
  const count = MAX_HELD_COMMANDS + 1;
  for (let i = 1; i <= count; i++) {
    alice.send({ type: "say", room: "general", text: `held ${i}`, cid: `h${i}` });
  }
  // The refusal comes while the join still waits for the store, so every say before it was read.
  const refused = await alice.waitFor((m) => m.type === "error");
  assert.deepEqual(
    [refused.code, refused.cid, refused.message],
    ["not_in_room", `h${count}`, "Cannot wait for the join: too many commands"],
  );
  assert.deepEqual(received(alice, "joined"), [], "the join is still in flight");
  store.open();
  await alice.waitFor((m) => m.type === "message" && m.cid === `h${MAX_HELD_COMMANDS}`);
  const types = alice.messages.map((m) => m.type);
  assert.ok(types.indexOf("joined") < types.indexOf("message"), "joined first");
  assert.deepEqual(
    received(alice, "message").map((m) => [m.seq, m.cid]),
    Array.from({ length: MAX_HELD_COMMANDS }, (_, i) => [i + 1, `h${i + 1}`]),
    "every held say, in order",
  );
  assert.equal(received(alice, "error").length, 1, "only the one over the limit was refused");
  assert.equal(alice.socket.readyState, WebSocket.OPEN);
});
