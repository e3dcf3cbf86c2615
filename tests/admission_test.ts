/** Admission's per-address bookkeeping, without sockets: open slots, pending slots, the rate. */
import assert from "node:assert/strict";
import { Admission } from "../http/admission.ts";

Deno.test("Admission refuses a pending connection over the per-address limit until one says hello", () => {
  const a = new Admission({ maxPerAddress: 10, maxPendingPerAddress: 2, handshakeRate: null });
  assert.equal(a.admit("10.0.0.1"), null);
  assert.equal(a.admit("10.0.0.1"), null);
  assert.equal(a.admit("10.0.0.1"), "too_many_pending");
  assert.equal(a.admit("10.0.0.2"), null, "another address has its own count");
  a.greeted("10.0.0.1");
  assert.equal(a.admit("10.0.0.1"), null);
  assert.deepEqual([a.openFrom("10.0.0.1"), a.pendingFrom("10.0.0.1")], [3, 2]);
});

Deno.test("Admission frees a pending slot only for a connection released before its hello", () => {
  const a = new Admission({ maxPerAddress: 0, maxPendingPerAddress: 1, handshakeRate: null });
  assert.equal(a.admit("h"), null);
  a.greeted("h");
  assert.equal(a.admit("h"), null);
  a.release("h", false); // the greeted one ends: the other is still pending
  assert.equal(a.admit("h"), "too_many_pending");
  a.release("h", true);
  assert.deepEqual([a.openFrom("h"), a.pendingFrom("h")], [0, 0]);
  assert.equal(a.admit("h"), null);
});

Deno.test("Admission counts pending slots toward the open limit, and 0 turns the pending limit off", () => {
  const a = new Admission({ maxPerAddress: 2, maxPendingPerAddress: 0, handshakeRate: null });
  assert.equal(a.admit("h"), null);
  assert.equal(a.admit("h"), null);
  assert.equal(a.admit("h"), "too_many_connections");
});
