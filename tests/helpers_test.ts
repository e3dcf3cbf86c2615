/**
 * The bounded waits of helpers.ts: a test that waits for a close, an upgrade or a reply fails
 * after a stated time, saying what it waited for, instead of hanging the suite.
 */
import assert from "node:assert/strict";
import { closedWithin, TestClient, within } from "./helpers.ts";

Deno.test("within resolves with the value of a promise that settles in time", async () => {
  assert.equal(await within("a quick answer", Promise.resolve(42), 1000), 42);
});

Deno.test("within rejects after its bound, naming what it waited for", async () => {
  const started = performance.now();
  await assert.rejects(
    () => within("an answer that never comes", new Promise(() => {}), 100),
    { message: "Timed out after 100 ms waiting for an answer that never comes" },
  );
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 95 && elapsed < 2000, `rejected after ${Math.round(elapsed)} ms`);
});

Deno.test("within passes on the promise's own rejection", async () => {
  await assert.rejects(() => within("x", Promise.reject(new Error("boom")), 1000), /boom/);
});

Deno.test("closedWithin fails, instead of hanging, against a server that keeps the socket open", async () => {
  const sockets: WebSocket[] = [];
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    sockets.push(socket); // accepted, and never closed by this server
    return response;
  });
  const c = new TestClient(`ws://127.0.0.1:${server.addr.port}/`);
  await within("the upgrade", c.opened, 5000);
  c.send({ type: "hello", name: "alice" });
  await assert.rejects(
    () => closedWithin(c, 200),
    /^Error: Timed out after 200 ms waiting for the server to close the socket; it is still open/,
  );
  await c.close();
});

Deno.test("closedWithin resolves with the close the server sent", async () => {
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = () => socket.close(4001, "go away");
    return response;
  });
  const c = new TestClient(`ws://127.0.0.1:${server.addr.port}/`);
  await within("the upgrade", c.opened, 5000);
  c.send("anything");
  const closed = await closedWithin(c, 5000);
  assert.deepEqual([closed.code, closed.reason], [4001, "go away"]);
});
