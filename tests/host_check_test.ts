/**
 * DNS rebinding and the Host check: the server answers only to the names it is reachable as (its
 * bound address, localhost on loopback, --allow-host and --public-url), and a browser origin must
 * be one of those with the listener's own scheme. The rule in units, through the handler with
 * `new Request`, and over real sockets both in-process and through main.ts.
 */
import assert from "node:assert/strict";
import { assets } from "../http/assets.ts";
import { VERSION } from "../ops/config.ts";
import { HostPolicy } from "../http/host_check.ts";
import { Hub } from "../hub.ts";
import { createHandler } from "../http/server.ts";
import { MemoryStore } from "../store/store.ts";
import { spawnServer } from "./helpers.ts";
import { defaultConfig, rawHttp, startServer, upgradeRequest } from "./server_fixture.ts";

const PORT = 8000;
const loopback = new HostPolicy({ scheme: "http", hostname: "127.0.0.1", port: PORT });

// ---- the rule ----

Deno.test("a loopback server answers to its address and the localhost names on its port", () => {
  for (
    const host of [
      "127.0.0.1:8000",
      "localhost:8000",
      "LOCALHOST:8000",
      "app.localhost:8000",
      "[::1]:8000",
      "127.1:8000", // the URL parser's spelling of 127.0.0.1, as a browser writes it
    ]
  ) assert.equal(loopback.allowsHost(host), true, host);
});

Deno.test("a loopback server refuses other names, other ports, and malformed Hosts", () => {
  for (
    const host of [
      "evil.example:8000",
      "evil.example",
      "localhost.evil.example:8000",
      "127.0.0.1:8001",
      "localhost",
      "127.0.0.1", // port 80 by default
      "10.0.0.5:8000", // an IP literal, but not an address this server is bound to
      "x@127.0.0.1:8000",
      "127.0.0.1:8000/ws",
      "a b:8000",
      "127.0.0.1:99999",
      "",
    ]
  ) assert.equal(loopback.allowsHost(host), false, JSON.stringify(host));
});

Deno.test("a server on every interface answers to any IP literal and localhost on its port, no other name", () => {
  for (const hostname of ["0.0.0.0", "::"]) {
    const all = new HostPolicy({ scheme: "http", hostname, port: PORT });
    for (const ok of ["192.168.1.20:8000", "[fe80::1]:8000", "localhost:8000", "127.0.0.1:8000"]) {
      assert.equal(all.allowsHost(ok), true, `${hostname}: ${ok}`);
    }
    for (const no of ["mybox.lan:8000", "evil.example:8000", "192.168.1.20:9000"]) {
      assert.equal(all.allowsHost(no), false, `${hostname}: ${no}`);
    }
  }
});

Deno.test("a server bound to a LAN address answers to that address only, not localhost", () => {
  const lan = new HostPolicy({ scheme: "http", hostname: "192.168.1.20", port: PORT });
  assert.equal(lan.allowsHost("192.168.1.20:8000"), true);
  assert.equal(lan.allowsHost("localhost:8000"), false, "loopback does not reach it");
  assert.equal(lan.allowsHost("192.168.1.21:8000"), false);
});

Deno.test("--host NAME is a name the server answers to", () => {
  const named = new HostPolicy({
    scheme: "http",
    hostname: "192.168.1.20",
    port: PORT,
    configuredHost: "chatbox.lan",
  });
  assert.equal(named.allowsHost("chatbox.lan:8000"), true);
  assert.equal(named.allowsHost("chatbox.lan:8001"), false);
});

Deno.test("--allow-host NAME allows that name on any port, NAME:PORT on that port only", () => {
  const behindProxy = new HostPolicy({
    scheme: "http",
    hostname: "127.0.0.1",
    port: PORT,
    allowHosts:
      defaultConfig(["--allow-host", "Chat.Example.com", "--allow-host", "b.example:8443"])
        .allowHosts,
  });
  assert.equal(behindProxy.allowsHost("chat.example.com"), true);
  assert.equal(behindProxy.allowsHost("CHAT.example.com:443"), true);
  assert.equal(behindProxy.allowsHost("b.example:8443"), true);
  assert.equal(behindProxy.allowsHost("b.example"), false);
  assert.equal(behindProxy.allowsHost("b.example:443"), false);
  assert.equal(behindProxy.allowsHost("sub.chat.example.com"), false);
});

Deno.test("--public-url's host is allowed and its exact origin may connect", () => {
  const hosts = new HostPolicy({
    scheme: "http",
    hostname: "127.0.0.1",
    port: PORT,
    publicUrl: defaultConfig(["--public-url", "https://chat.example.com/"]).publicUrl,
  });
  assert.equal(hosts.allowsHost("chat.example.com"), true);
  assert.equal(hosts.allowsOrigin("https://chat.example.com"), true);
  assert.equal(hosts.allowsOrigin("http://chat.example.com"), false, "the scheme is part of it");
  assert.equal(hosts.allowsOrigin("https://chat.example.com:8443"), false);
});

Deno.test("an origin must use the listener's scheme, except on a name listed with --allow-host", () => {
  assert.equal(loopback.allowsOrigin("http://127.0.0.1:8000"), true);
  assert.equal(loopback.allowsOrigin("http://localhost:8000"), true);
  assert.equal(loopback.allowsOrigin("https://127.0.0.1:8000"), false, "plain http listener");
  assert.equal(loopback.allowsOrigin("ws://127.0.0.1:8000"), false);
  assert.equal(loopback.allowsOrigin("http://evil.example:8000"), false);
  assert.equal(loopback.allowsOrigin("null"), false);
  const tls = new HostPolicy({ scheme: "https", hostname: "127.0.0.1", port: 443 });
  assert.equal(tls.allowsOrigin("https://127.0.0.1"), true);
  assert.equal(tls.allowsOrigin("http://127.0.0.1:443"), false);
  // A proxy in front may terminate TLS: a listed name is trusted over either scheme.
  const listed = new HostPolicy({
    scheme: "http",
    hostname: "127.0.0.1",
    port: PORT,
    allowHosts: ["chat.example.com"],
  });
  assert.equal(listed.allowsOrigin("https://chat.example.com"), true);
  assert.equal(listed.allowsOrigin("http://chat.example.com:8080"), true);
});

Deno.test("--allow-host and --public-url refuse what they cannot read", () => {
  for (
    const [flag, value] of [
      ["--allow-host", "https://chat.example.com"],
      ["--allow-host", "chat.example.com/ws"],
      ["--allow-host", "chat.example.com:99999"],
      ["--public-url", "chat.example.com"],
      ["--public-url", "ftp://chat.example.com"],
    ]
  ) {
    assert.throws(() => defaultConfig([flag, value]), (e: Error) => {
      const expected = flag === "--allow-host"
        ? `Cannot read --allow-host: expected like chat.example.com or chat.example.com:8443, got \\"${value}\\"`
        : `Cannot read --public-url: expected like https://chat.example.com, got \\"${value}\\"`;
      assert.ok(e.message.includes(expected), e.message);
      return true;
    });
  }
  assert.deepEqual(defaultConfig(["--allow-host", "a.example, B.example:8443"]).allowHosts, [
    "a.example",
    "b.example:8443",
  ]);
  assert.deepEqual(
    [defaultConfig().allowHosts, defaultConfig().publicUrl],
    [[], null],
    "the defaults",
  );
});

// ---- the handler ----

async function handlerOn(port: number, refusals: string[]) {
  const store = new MemoryStore();
  const hub = new Hub({ store, maxRoomsPerClient: 32, version: VERSION, welcomeLimits: {} });
  await hub.start();
  const handler = createHandler({
    hub,
    config: defaultConfig(),
    hosts: new HostPolicy({ scheme: "http", hostname: "127.0.0.1", port }),
    assets,
    version: VERSION,
    metrics: { render: () => "", token: null },
    refused: (code) => refusals.push(code),
  });
  return { handler, [Symbol.asyncDispose]: () => hub.shutdown() };
}

Deno.test("every path refuses a Host the server does not answer to with 403 host", async () => {
  const refusals: string[] = [];
  await using h = await handlerOn(PORT, refusals);
  for (const path of ["/", "/healthz", "/metrics", "/ws"]) {
    const response = await h.handler(
      new Request(`http://evil.example:${PORT}${path}`, {
        headers: { host: `evil.example:${PORT}`, origin: `http://evil.example:${PORT}` },
      }),
    );
    assert.equal(response.status, 403, path);
    assert.match(await response.text(), /^Cannot serve: .*--allow-host/);
  }
  assert.deepEqual(refusals, ["host", "host", "host", "host"]);
  const ok = await h.handler(new Request(`http://localhost:${PORT}/healthz`));
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
});

Deno.test("an https Origin is refused by a plain-http server on its own address", async () => {
  const refusals: string[] = [];
  await using h = await handlerOn(PORT, refusals);
  const response = await h.handler(
    new Request(`http://127.0.0.1:${PORT}/ws`, {
      headers: { upgrade: "websocket", origin: `https://127.0.0.1:${PORT}` },
    }),
  );
  assert.equal(response.status, 403);
  assert.match(await response.text(), /origin not allowed/);
  assert.deepEqual(refusals, ["origin"]);
});

// ---- real sockets ----

const rebinding = (port: number, name = "evil.example") =>
  upgradeRequest(port, [`Origin: http://${name}:${port}`]).replace(
    `Host: 127.0.0.1:${port}`,
    `Host: ${name}:${port}`,
  );

Deno.test("a DNS-rebinding upgrade (Host and Origin both evil.example) gets 403, a listed name 101", async () => {
  {
    await using server = await startServer();
    const response = await rawHttp(server.port, rebinding(server.port));
    assert.equal(response.status, 403);
    assert.equal(server.hub.connections, 0);
  }
  {
    await using server = await startServer({ allowHosts: ["evil.example"] });
    const response = await rawHttp(server.port, rebinding(server.port));
    assert.equal(response.status, 101, "the operator listed the name");
  }
});

Deno.test("main.ts refuses a rebinding upgrade and page, and answers to localhost and --allow-host", async () => {
  const server = await spawnServer(["--port", "0", "--allow-host", "chat.example"]);
  try {
    const status = async (request: string) => (await rawHttp(server.port, request)).status;
    const page = (host: string) => `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
    assert.equal(await status(rebinding(server.port)), 403);
    assert.equal(await status(page(`evil.example:${server.port}`)), 403);
    assert.equal(await status(page(`localhost:${server.port}`)), 200);
    assert.equal(await status(page("chat.example")), 200);
    assert.equal(await status(rebinding(server.port, "chat.example")), 101);
    assert.match(server.output(), /refused .*code=host/);
  } finally {
    await server.stop();
  }
});
