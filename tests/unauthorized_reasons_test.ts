/**
 * The four 4001 close reasons of docs/protocol.md ("Signing in"), each met over a real socket
 * against the real server process, which a client reads to know what to ask its user for.
 */
import assert from "node:assert/strict";
import { signJwt } from "../auth/jwt.ts";
import { MAX_FAILURES_PER_ACCOUNT, SIGN_IN_WINDOW_MS } from "../auth/sign_in_limit.ts";
import { CLOSE_WAIT_MS, closedWithin, spawnServer, TestClient, within } from "./helpers.ts";

const PASSWORD = "reasons-test-password";
const SECRET = "reasons-test-secret-0123456789-0123456789";

/** Says `hello` on a new socket; the welcomed name, or the close code and reason. */
async function outcome(wsUrl: string, hello: Record<string, unknown>): Promise<unknown[]> {
  const c = new TestClient(wsUrl);
  await within("the WebSocket upgrade", c.opened, CLOSE_WAIT_MS);
  c.send({ type: "hello", ...hello });
  const result = await Promise.race([
    c.waitFor((m) => m.type === "welcome").then((m) => ["welcome", m.name]),
    closedWithin(c).then((e) => [e.code, e.reason]),
  ]);
  await c.close();
  return result;
}

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

Deno.test("each 4001 reason says what is missing: password, token, a valid token, a valid name in it", async () => {
  // Both checks on, so one server can refuse for every reason; the password is checked first.
  const server = await spawnServer(["--port", "0", "--password", PASSWORD, "--jwt-secret", SECRET]);
  try {
    const token = await signJwt({ sub: "dana", exp: inAnHour() }, SECRET);
    assert.deepEqual(await outcome(server.wsUrl, { password: PASSWORD, token }), [
      "welcome",
      "dana",
    ]);
    assert.deepEqual(await outcome(server.wsUrl, { token }), [4001, "password required or wrong"]);
    assert.deepEqual(
      await outcome(server.wsUrl, { password: PASSWORD + "x", token }),
      [4001, "password required or wrong"],
    );
    assert.deepEqual(
      await outcome(server.wsUrl, { name: "dana", password: PASSWORD }),
      [4001, "token required"],
    );
    const forged = await signJwt({ sub: "dana", exp: inAnHour() }, SECRET + "-wrong");
    assert.deepEqual(
      await outcome(server.wsUrl, { password: PASSWORD, token: forged }),
      [4001, "token invalid or expired"],
    );
    const expired = await signJwt({ sub: "dana", exp: inAnHour() - 7200 }, SECRET);
    assert.deepEqual(
      await outcome(server.wsUrl, { password: PASSWORD, token: expired }),
      [4001, "token invalid or expired"],
    );
    const spaced = await signJwt({ sub: "da na", exp: inAnHour() }, SECRET);
    assert.deepEqual(
      await outcome(server.wsUrl, { password: PASSWORD, token: spaced }),
      [4001, "token names an invalid name"],
    );
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("with --password alone, a missing or wrong password is closed with 4001 password required or wrong", async () => {
  const server = await spawnServer(["--port", "0", "--password", PASSWORD]);
  try {
    assert.deepEqual(await outcome(server.wsUrl, { name: "ann", password: PASSWORD }), [
      "welcome",
      "ann",
    ]);
    assert.deepEqual(await outcome(server.wsUrl, { name: "ann" }), [
      4001,
      "password required or wrong",
    ]);
    assert.deepEqual(
      await outcome(server.wsUrl, { name: "ann", password: PASSWORD.slice(1) }),
      [4001, "password required or wrong"],
    );
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("a token that expires on an open connection closes it with 4001 token invalid or expired", async () => {
  const server = await spawnServer(["--port", "0", "--jwt-secret", SECRET]);
  try {
    // exp is in whole seconds: 2 s ahead is at least 1 s of welcome before it passes.
    const token = await signJwt({ sub: "brief", exp: Math.floor(Date.now() / 1000) + 2 }, SECRET);
    const c = await TestClient.connect(server.wsUrl, "ignored", { token });
    assert.equal(c.messages[0].name, "brief");
    const closed = await closedWithin(c, 3000 + CLOSE_WAIT_MS, "the close at the token's expiry");
    assert.deepEqual([closed.code, closed.reason], [4001, "token invalid or expired"]);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("guessing the shared password is bounded per address: past the limit even the right one is refused, saying how long to wait", async () => {
  const server = await spawnServer(["--port", "0", "--password", PASSWORD]);
  try {
    for (let i = 0; i < MAX_FAILURES_PER_ACCOUNT; i++) {
      assert.deepEqual(
        await outcome(server.wsUrl, { name: `guess${i}`, password: `guess${i}` }),
        [4001, "password required or wrong"],
      );
    }
    const [code, reason] = await outcome(server.wsUrl, { name: "dana", password: PASSWORD });
    assert.equal(code, 4001);
    assert.match(String(reason), /^too many failed sign-ins, try again in \d+ s$/);
    const seconds = Number(/in (\d+) s/.exec(String(reason))![1]);
    assert.ok(seconds > 0 && seconds <= SIGN_IN_WINDOW_MS / 1000, `${seconds} s`);
    assert.match(server.output(), /unauthorized address=127\.0\.0\.1 reason="too many failed/);
    assert.doesNotMatch(server.output(), new RegExp(PASSWORD), "the password is never logged");
  } finally {
    await server.stop();
  }
});
