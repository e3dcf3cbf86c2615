/**
 * The HTTP side over real sockets: who may open /ws (origin, capacity, shutdown), what a
 * request that is not a proper upgrade gets, the static files with their security headers and
 * ETags, and /healthz. Upgrade requests are written by hand over TCP where a status code or a
 * header matters, since the WebSocket client reports a refused upgrade only as an error event.
 */
import assert from "node:assert/strict";
import { assets } from "../http/assets.ts";
import { VERSION } from "../ops/config.ts";
import {
  defaultConfig,
  join,
  rawHttp,
  sleep,
  startServer,
  upgradeRequest,
} from "./server_fixture.ts";

// ---- origin ----

Deno.test("a WebSocket without Origin is accepted", async () => {
  await using server = await startServer();
  const response = await rawHttp(server.port, upgradeRequest(server.port));
  assert.equal(response.status, 101);
  const alice = await server.connect("alice");
  assert.equal(alice.messages[0].type, "welcome");
});

Deno.test("a WebSocket whose Origin matches Host is accepted", async () => {
  await using server = await startServer();
  const c = await server.open({ headers: { origin: server.origin } });
  c.send({ type: "hello", name: "alice" });
  const welcome = await c.waitFor((m) => m.type === "welcome");
  assert.equal(welcome.name, "alice");
  const raw = await rawHttp(
    server.port,
    upgradeRequest(server.port, [`Origin: ${server.origin}`]),
  );
  assert.equal(raw.status, 101);
});

for (
  const origin of ["http://evil.example", "http://127.0.0.1:1", "null", "not a url"]
) {
  Deno.test(`Origin ${origin} gets HTTP 403 before the upgrade`, async () => {
    await using server = await startServer();
    const response = await rawHttp(server.port, upgradeRequest(server.port, [`Origin: ${origin}`]));
    assert.equal(response.status, 403);
    assert.match(response.body, /origin not allowed/);
    assert.equal(response.headers.get("upgrade"), null);
    assert.equal(server.hub.connections, 0);
  });
}

Deno.test("--allow-origin lets the listed origins connect, matched case-insensitively, and no others", async () => {
  const config = defaultConfig([
    "--allow-origin",
    "https://a.example,https://B.example",
    "--allow-origin",
    "https://c.example:8443",
  ]);
  await using server = await startServer({ allowOrigins: config.allowOrigins });
  const status = async (origin: string) =>
    (await rawHttp(server.port, upgradeRequest(server.port, [`Origin: ${origin}`]))).status;
  assert.equal(await status("https://a.example"), 101);
  assert.equal(await status("https://b.example"), 101);
  assert.equal(await status("https://A.EXAMPLE"), 101);
  assert.equal(await status("https://c.example:8443"), 101);
  assert.equal(await status("https://c.example"), 403, "the port is part of the origin");
  assert.equal(await status("http://a.example"), 403, "the scheme is part of the origin");
  assert.equal(await status("https://d.example"), 403);
  assert.equal(await status(server.origin), 101, "the server's own origin still works");
});

Deno.test("--allow-origin * lets any origin connect", async () => {
  const config = defaultConfig(["--allow-origin", "*"]);
  await using server = await startServer({ allowOrigins: config.allowOrigins });
  for (const origin of ["https://anything.example", "null"]) {
    const response = await rawHttp(
      server.port,
      upgradeRequest(server.port, [`Origin: ${origin}`]),
    );
    assert.equal(response.status, 101, origin);
  }
  const c = await server.open({ headers: { origin: "https://elsewhere.example" } });
  c.send({ type: "hello", name: "alice" });
  await c.waitFor((m) => m.type === "welcome");
});

// ---- capacity and malformed requests ----

Deno.test("over max connections the upgrade gets HTTP 503 with Retry-After", async () => {
  await using server = await startServer({ maxConnections: 2 });
  const alice = await server.connect("alice");
  await server.open(); // connected, no hello yet: it still counts
  const response = await rawHttp(server.port, upgradeRequest(server.port));
  assert.equal(response.status, 503);
  assert.match(response.body, /full/);
  assert.ok(Number(response.headers.get("retry-after")) > 0);
  // A freed slot is reusable.
  await alice.close();
  for (let i = 0; i < 100 && server.hub.connections >= 2; i++) await sleep(10);
  const bob = await server.connect("bob");
  assert.equal(bob.messages[0].name, "bob");
});

Deno.test("during shutdown the upgrade gets HTTP 503", async () => {
  await using server = await startServer();
  await server.hub.shutdown();
  const response = await rawHttp(server.port, upgradeRequest(server.port));
  assert.equal(response.status, 503);
  assert.match(response.body, /shutting down/);
});

Deno.test("a plain GET /ws without upgrade headers gets 400", async () => {
  await using server = await startServer();
  const response = await fetch(`${server.origin}/ws`);
  assert.equal(response.status, 400);
  assert.match(await response.text(), /WebSocket/);
});

Deno.test("an upgrade without Sec-WebSocket-Key gets 400, not 500", async () => {
  await using server = await startServer();
  const request = [
    "GET /ws HTTP/1.1",
    `Host: 127.0.0.1:${server.port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Version: 13",
    "",
    "",
  ].join("\r\n");
  const response = await rawHttp(server.port, request);
  assert.equal(response.status, 400);
  assert.equal(server.hub.connections, 0);
});

Deno.test("the Upgrade header is matched case-insensitively", async () => {
  await using server = await startServer();
  const request = upgradeRequest(server.port).replace("Upgrade: websocket", "Upgrade: WebSocket");
  assert.equal((await rawHttp(server.port, request)).status, 101);
});

Deno.test("POST /ws gets 405", async () => {
  await using server = await startServer();
  const response = await fetch(`${server.origin}/ws`, { method: "POST", body: "x" });
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "GET");
  await response.body?.cancel();
});

// ---- static files and health ----

Deno.test("/ serves HTML with a strict CSP, nosniff, no-referrer and an ETag", async () => {
  await using server = await startServer();
  const response = await fetch(`${server.origin}/`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
  const csp = response.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  assert.equal(response.headers.get("referrer-policy"), "no-referrer");
  assert.match(response.headers.get("etag") ?? "", /^"[^"]+"$/);
  assert.match(await response.text(), /<!doctype html>/i);
});

Deno.test("/ answers 304 without a body to If-None-Match with its ETag", async () => {
  await using server = await startServer();
  const first = await fetch(`${server.origin}/`);
  await first.body?.cancel();
  const etag = first.headers.get("etag")!;
  for (const header of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
    const again = await fetch(`${server.origin}/`, { headers: { "if-none-match": header } });
    assert.equal(again.status, 304, header);
    assert.equal(again.headers.get("etag"), etag);
    assert.equal(await again.text(), "");
  }
  const changed = await fetch(`${server.origin}/`, { headers: { "if-none-match": '"stale"' } });
  assert.equal(changed.status, 200);
  await changed.body?.cancel();
});

Deno.test("every embedded file is served with its type, the security headers and an ETag", async () => {
  await using server = await startServer();
  for (const [path, asset] of assets) {
    const response = await fetch(`${server.origin}${path}`);
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get("content-type"), asset.type, path);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff", path);
    assert.match(response.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    assert.ok(response.headers.get("etag"), path);
    assert.equal(await response.text(), asset.body, path);
  }
});

Deno.test("HEAD / answers the headers without a body", async () => {
  await using server = await startServer();
  const response = await fetch(`${server.origin}/`, { method: "HEAD" });
  assert.equal(response.status, 200);
  assert.ok(response.headers.get("etag"));
  assert.equal(await response.text(), "");
});

Deno.test("an unknown path gets 404 with the security headers; POST / gets 405", async () => {
  await using server = await startServer();
  const missing = await fetch(`${server.origin}/nope.js`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("x-content-type-options"), "nosniff");
  await missing.body?.cancel();
  const post = await fetch(`${server.origin}/`, { method: "POST", body: "x" });
  assert.equal(post.status, 405);
  await post.body?.cancel();
});

Deno.test("/healthz reports status, connections, rooms, uptime and version as JSON", async () => {
  await using server = await startServer();
  const alice = await server.connect("alice");
  await join(alice, "general");
  await server.open(); // a connection without hello counts too
  const response = await fetch(`${server.origin}/healthz`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(response.headers.get("cache-control"), "no-store");
  const body = await response.json();
  assert.deepEqual(Object.keys(body).sort(), [
    "connections",
    "rooms",
    "status",
    "uptimeSeconds",
    "version",
  ]);
  assert.equal(body.status, "ok");
  assert.equal(body.connections, 2);
  assert.equal(body.rooms, 1);
  assert.ok(Number.isInteger(body.uptimeSeconds) && body.uptimeSeconds >= 0);
  assert.equal(body.version, VERSION);
});
