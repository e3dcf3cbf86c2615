/**
 * Sign-in as a page and an operator meet it: `/config.json` tells the page which fields to show
 * before any hello, and `deno task token` (scripts/token.ts) mints tokens the server accepts.
 */
import assert from "node:assert/strict";
import { createJwtVerifier } from "../auth/jwt.ts";
import { DEFAULT_TOKEN_TTL_SECONDS, main, mintToken, parseTtl } from "../scripts/token.ts";
import { spawnServer, TestClient } from "./helpers.ts";
import { startServer } from "./server_fixture.ts";

/** Reads /config.json from a server started with `options`. */
async function signInConfig(
  options: { password?: string; jwtSecret?: string; registration?: "password" },
) {
  await using server = await startServer({
    password: options.password ?? null,
    jwtSecret: options.jwtSecret ?? null,
    maxTextChars: 123,
    ...(options.registration ? { registration: options.registration } : {}),
  });
  const response = await fetch(`${server.origin}/config.json`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.equal(response.headers.get("cache-control"), "no-store");
  const text = await response.text();
  for (const secret of [options.password, options.jwtSecret]) {
    if (secret !== undefined) assert.equal(text.includes(secret), false, "a secret is served");
  }
  return JSON.parse(text);
}

Deno.test("/config.json says an open server wants only a name", async () => {
  assert.deepEqual(await signInConfig({}), {
    auth: "none",
    password: false,
    registration: "open",
    maxTextChars: 123,
  });
});

Deno.test("/config.json says a --registration password server wants a password for a new name", async () => {
  assert.deepEqual(await signInConfig({ registration: "password" }), {
    auth: "none",
    password: false,
    registration: "password",
    maxTextChars: 123,
  });
});

Deno.test("/config.json says a --password server wants a password, without serving it", async () => {
  assert.deepEqual(await signInConfig({ password: "s3cret-pw" }), {
    auth: "password",
    password: true,
    registration: "open",
    maxTextChars: 123,
  });
});

Deno.test("/config.json says a --jwt-secret server wants a token, and a password when both are set", async () => {
  assert.deepEqual(await signInConfig({ jwtSecret: "k3y-secret" }), {
    auth: "token",
    password: false,
    registration: "open",
    maxTextChars: 123,
  });
  assert.deepEqual(await signInConfig({ jwtSecret: "k3y-secret", password: "s3cret-pw" }), {
    auth: "token",
    password: true,
    registration: "open",
    maxTextChars: 123,
  });
});

Deno.test("A minted token is accepted by the server's verifier until its ttl runs out", async () => {
  const t0 = Date.UTC(2026, 0, 1);
  const token = await mintToken({ secret: "k3y", sub: "alice", ttlSeconds: 3600, now: () => t0 });
  let now = t0 + 3599_000;
  const verify = await createJwtVerifier("k3y", { now: () => now });
  assert.deepEqual(await verify(token), { ok: true, name: "alice", exp: t0 + 3600_000 });
  now = t0 + 3600_000;
  assert.deepEqual(await verify(token), {
    ok: false,
    reason: "Cannot accept token: token has expired",
  });
  // Another secret's verifier refuses it outright.
  const other = await createJwtVerifier("other");
  assert.deepEqual(await other(token), {
    ok: false,
    reason: "Cannot accept token: signature does not match",
  });
});

Deno.test("A minted token lasts a day by default", async () => {
  const t0 = Date.UTC(2026, 0, 1);
  const token = await mintToken({ secret: "k3y", sub: "bob", now: () => t0 });
  const verify = await createJwtVerifier("k3y", { now: () => t0 });
  assert.deepEqual(await verify(token), {
    ok: true,
    name: "bob",
    exp: t0 + DEFAULT_TOKEN_TTL_SECONDS * 1000,
  });
});

Deno.test("mintToken refuses an empty secret and a name the server would refuse", async () => {
  await assert.rejects(
    () => mintToken({ secret: "", sub: "alice" }),
    /^Error: Cannot mint token: no secret/,
  );
  await assert.rejects(
    () => mintToken({ secret: "k3y", sub: "no spaces" }),
    /^Error: Cannot mint token: --sub name may hold only/,
  );
});

Deno.test("parseTtl reads seconds, minutes, hours and days and refuses the rest", () => {
  assert.equal(parseTtl("90"), 90);
  assert.equal(parseTtl("90s"), 90);
  assert.equal(parseTtl("15m"), 900);
  assert.equal(parseTtl("8h"), 28_800);
  assert.equal(parseTtl("7d"), 604_800);
  for (const bad of ["", "0", "0s", "1w", "-1h", "1.5h", "366d", "h"]) {
    assert.throws(() => parseTtl(bad), /^Error: Cannot mint token: --ttl must be/, bad);
  }
});

Deno.test("deno task token prints a token the real server accepts and the expiry the ttl gives", async () => {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "token", "--sub", "carol", "--ttl", "2h"],
    env: { CHAT_JWT_SECRET: "task-secret", NO_COLOR: "1" },
    cwd: new URL("..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  });
  const before = Date.now();
  const out = await command.output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const server = await spawnServer(["--port", "0", "--jwt-secret", "task-secret"]);
  try {
    const client = await TestClient.connect(server.wsUrl, "ignored", { token: stdout });
    const welcome = client.messages.find((m) => m.type === "welcome");
    await client.close();
    assert.equal(welcome?.name, "carol");
  } finally {
    await server.stop();
  }
  const verify = await createJwtVerifier("task-secret");
  const result = await verify(stdout);
  assert.ok(result.ok && result.exp !== undefined);
  const ttl = result.exp - before;
  assert.ok(ttl > 7190_000 && ttl <= 7201_000, `expires in ${ttl} ms`);
});

Deno.test("The token command says what is missing in one Cannot line", async () => {
  const errors: string[] = [];
  const error = console.error, log = console.log;
  console.error = (m: string) => errors.push(m);
  console.log = () => {};
  try {
    assert.equal(await main(["--secret", "k3y"]), 2);
    assert.equal(await main(["--secret", "k3y", "--sub", "al", "--ttl", "forever"]), 2);
    assert.equal(await main(["--sub", "al", "--secret", "k3y", "--what"]), 2);
    assert.equal(await main(["--help"]), 0);
  } finally {
    console.error = error;
    console.log = log;
  }
  const lines = errors.filter((e) => e.startsWith("Cannot"));
  assert.equal(lines.length, 3);
  assert.equal(lines[0], "Cannot mint token: --sub NAME is required");
  assert.match(lines[1], /^Cannot mint token: --ttl must be/);
  assert.match(lines[2], /^Cannot mint token: .*--what/);
});
