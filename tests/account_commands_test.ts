/**
 * Passwords and sessions over real sockets, on one instance (the cluster's are in cluster_test.ts):
 * a password signs a new device in beside the first, a wrong one is refused and limited, a change
 * needs the current password and ends other sessions, `sessions` and `sign_out` manage them, and
 * read markers move forward only and reach every connection of the account.
 */
import assert from "node:assert/strict";
import { CloseCode } from "../protocol/protocol.ts";
import { MAX_FAILURES_PER_ACCOUNT } from "../auth/sign_in_limit.ts";
import { PASSWORD_REQUIRED, SIGNED_OUT, WRONG_PASSWORD } from "../hub/sessions.ts";
import { closedWithin, type Msg, type TestClient } from "./helpers.ts";
import { join, startServer } from "./server_fixture.ts";

const PASSWORD = "correct horse battery";

/** Sends `command` with a cid and waits for its reply or error. */
function ask(c: TestClient, command: Msg, cid: string): Promise<Msg> {
  return c.request({ ...command, cid }, (m) => m.cid === cid);
}

/** Sends a hello and waits for its welcome, or for the close that refused it. */
async function hello(
  server: { open(): Promise<TestClient> },
  fields: Msg,
): Promise<{ c: TestClient; welcome?: Msg; closed?: CloseEvent }> {
  const c = await server.open();
  c.send({ type: "hello", ...fields });
  const got = await Promise.race([
    c.waitFor((m) => m.type === "welcome").then((welcome) => ({ welcome })),
    closedWithin(c).then((closed) => ({ closed })),
  ]);
  return { c, ...got };
}

Deno.test("set_password, then the password signs a second device in beside the first, both live", async () => {
  await using server = await startServer();
  const laptop = await server.connect("Ada", { device: "Firefox on Linux" });
  assert.equal(laptop.messages[0].hasPassword, false);
  const set = await ask(laptop, { type: "set_password", password: PASSWORD }, "p1");
  assert.deepEqual(set, { type: "password_set", signedOut: 0, cid: "p1" });
  const phone = await hello(server, { name: "ada", accountPassword: PASSWORD, device: "Phone" });
  assert.equal(phone.welcome?.name, "Ada", "signed in, under the account's spelling");
  assert.equal(phone.welcome?.hasPassword, true);
  assert.notEqual(phone.welcome?.resume, laptop.messages[0].resume, "a session of its own");
  await join(laptop, "general");
  await join(phone.c, "general");
  phone.c.send({ type: "say", room: "general", text: "from the phone", cid: "m1" });
  await laptop.waitFor((m) => m.type === "message" && m.text === "from the phone");
  const list = await ask(phone.c, { type: "sessions" }, "s1");
  const devices = list.sessions.map((s: Msg) => `${s.device}${s.current ? " (this)" : ""}`);
  assert.deepEqual(devices.sort(), ["Firefox on Linux", "Phone (this)"]);
  for (const s of list.sessions) {
    assert.deepEqual(Object.keys(s).sort(), ["createdAt", "current", "device", "id", "lastSeenAt"]);
  }
});

Deno.test("a wrong password at the hello is closed with 4001; past the limit even the right one waits", async () => {
  await using server = await startServer();
  const owner = await server.connect("Ada", { accountPassword: PASSWORD });
  assert.equal(owner.messages[0].hasPassword, true, "a password chosen at the first hello");
  for (let i = 0; i < MAX_FAILURES_PER_ACCOUNT; i++) {
    const guess = await hello(server, { name: "Ada", accountPassword: `guess ${i} wrong` });
    assert.equal(guess.closed?.code, CloseCode.unauthorized);
    assert.equal(guess.closed?.reason, WRONG_PASSWORD);
  }
  const right = await hello(server, { name: "Ada", accountPassword: PASSWORD });
  assert.equal(right.closed?.code, CloseCode.unauthorized);
  assert.match(right.closed?.reason ?? "", /^too many failed sign-ins, try again in \d+ s$/);
  // The owner, signed in with a session, is not locked out by someone guessing.
  const token = owner.messages[0].resume;
  await owner.close();
  const back = await hello(server, { name: "Ada", resume: token });
  assert.equal(back.welcome?.name, "Ada");
});

Deno.test("changing a password needs the current one; the change ends the account's other sessions", async () => {
  await using server = await startServer();
  const laptop = await server.connect("Ada", { accountPassword: PASSWORD });
  const phone = await hello(server, { name: "Ada", accountPassword: PASSWORD, device: "Phone" });
  const tab = await server.connect("Ada", { resume: laptop.messages[0].resume });
  const missing = await ask(laptop, { type: "set_password", password: "a new password" }, "c1");
  assert.equal(missing.code, "wrong_password");
  const wrong = await ask(
    laptop,
    { type: "set_password", password: "a new password", current: "not it at all" },
    "c2",
  );
  assert.equal(wrong.code, "wrong_password");
  assert.equal(wrong.message, "Cannot set password: the current password is wrong");
  const short = await ask(
    laptop,
    { type: "set_password", password: "short", current: PASSWORD },
    "c3",
  );
  assert.equal(short.code, "bad_request");
  assert.equal(short.message, "Cannot set password: password must be at least 8 characters");
  const done = await ask(
    laptop,
    { type: "set_password", password: "a new password", current: PASSWORD },
    "c4",
  );
  assert.deepEqual(done, { type: "password_set", signedOut: 1, cid: "c4" });
  const closed = await closedWithin(phone.c);
  assert.equal(closed.code, CloseCode.unauthorized);
  assert.equal(closed.reason, SIGNED_OUT);
  assert.equal(tab.socket.readyState, WebSocket.OPEN, "this session's other tab stays");
  const old = await hello(server, { name: "Ada", accountPassword: PASSWORD });
  assert.equal(old.closed?.reason, WRONG_PASSWORD);
  const fresh = await hello(server, { name: "Ada", accountPassword: "a new password" });
  assert.equal(fresh.welcome?.name, "Ada");
});

Deno.test("sign_out with a session id ends that device: 4001 signed out, and its token opens nothing", async () => {
  await using server = await startServer();
  const laptop = await server.connect("Ada", { accountPassword: PASSWORD, device: "Laptop" });
  const phone = await hello(server, { name: "Ada", accountPassword: PASSWORD, device: "Phone" });
  const list = await ask(laptop, { type: "sessions" }, "l1");
  const phoneSession = list.sessions.find((s: Msg) => s.device === "Phone");
  const reply = await ask(laptop, { type: "sign_out", session: phoneSession.id }, "o1");
  assert.deepEqual(reply, { type: "signed_out", sessions: [phoneSession.id], cid: "o1" });
  const closed = await closedWithin(phone.c);
  assert.equal(closed.code, CloseCode.unauthorized);
  assert.equal(closed.reason, SIGNED_OUT);
  const again = await hello(server, { name: "Ada", resume: phone.welcome!.resume });
  assert.equal(again.closed?.code, CloseCode.nameTaken, "the revoked token is no proof");
  const unknown = await ask(laptop, { type: "sign_out", session: phoneSession.id }, "o2");
  assert.equal(unknown.code, "bad_request");
  assert.equal(unknown.message, "Cannot sign out: no such session");
  assert.equal(laptop.socket.readyState, WebSocket.OPEN);
});

Deno.test("sign_out alone ends this session on every tab of it, after its reply; others: true keeps it", async () => {
  await using server = await startServer();
  const laptop = await server.connect("Ada", { accountPassword: PASSWORD });
  const phone = await hello(server, { name: "Ada", accountPassword: PASSWORD });
  const tab = await server.connect("Ada", { resume: laptop.messages[0].resume });
  const others = await ask(laptop, { type: "sign_out", others: true }, "x1");
  assert.equal(others.sessions.length, 1);
  assert.equal((await closedWithin(phone.c)).reason, SIGNED_OUT);
  assert.equal(tab.socket.readyState, WebSocket.OPEN, "the same session's tab stays");
  laptop.send({ type: "sign_out", cid: "x2" });
  const [mine, other] = await Promise.all([closedWithin(laptop), closedWithin(tab)]);
  assert.equal(laptop.messages.at(-1)?.type, "signed_out", "the reply came before the close");
  for (const closed of [mine, other]) {
    assert.equal(closed.code, CloseCode.unauthorized);
    assert.equal(closed.reason, SIGNED_OUT);
  }
});

Deno.test("--registration password: a new name needs a password at its first hello", async () => {
  await using server = await startServer({ registration: "password" });
  const bare = await hello(server, { name: "Bob" });
  assert.equal(bare.closed?.code, CloseCode.unauthorized);
  assert.equal(bare.closed?.reason, PASSWORD_REQUIRED);
  const made = await hello(server, { name: "Bob", accountPassword: PASSWORD });
  assert.equal(made.welcome?.hasPassword, true);
});

Deno.test("account commands refuse malformed input with bad_request and keep the connection", async () => {
  await using server = await startServer();
  const c = await server.connect("Ada");
  const cases: [Msg, string][] = [
    [{ type: "set_password" }, "Cannot set password: password is missing"],
    [{ type: "set_password", password: 12345678 }, "Cannot set password: password is missing"],
    [
      { type: "set_password", password: PASSWORD, current: 1 },
      "Cannot set password: current must be a string",
    ],
    [
      { type: "sign_out", session: "x", others: true },
      "Cannot sign out: give session or others, not both",
    ],
    [{ type: "sign_out", others: false }, "Cannot sign out: others must be true"],
    [{ type: "sign_out", session: "" }, "Cannot sign out: session must be a session id"],
  ];
  for (const [i, [command, message]] of cases.entries()) {
    const reply = await ask(c, command, `b${i}`);
    assert.deepEqual(
      [reply.code, reply.message],
      ["bad_request", message],
      JSON.stringify(command),
    );
  }
  const long = await ask(c, { type: "set_password", password: "x".repeat(1025) }, "long");
  assert.equal(long.code, "too_long");
  assert.equal(c.socket.readyState, WebSocket.OPEN);
});

Deno.test("a hello's device label and account password are bounded: over the bound is 4000", async () => {
  await using server = await startServer();
  const device = await hello(server, { name: "Ada", device: "d".repeat(65) });
  assert.equal(device.closed?.code, CloseCode.badHandshake);
  assert.equal(
    device.closed?.reason,
    "Cannot start: device must be 1-64 characters, none of them control characters",
  );
  const control = await hello(server, { name: "Ada", device: "tab\u0007" });
  assert.equal(control.closed?.code, CloseCode.badHandshake);
  const secret = await hello(server, { name: "Ada", accountPassword: "p".repeat(1025) });
  assert.equal(secret.closed?.code, CloseCode.badHandshake);
  assert.equal(secret.closed?.reason, "Cannot start: accountPassword is over 1024 characters");
});

Deno.test("read moves the account's marker forward only, tells every connection of it, and the welcome carries it", async () => {
  await using server = await startServer();
  const laptop = await server.connect("Ada");
  const phone = await server.connect("Ada", { resume: laptop.messages[0].resume });
  const bob = await server.connect("Bob");
  for (const c of [laptop, phone, bob]) await join(c, "general");
  for (let i = 1; i <= 3; i++) {
    await bob.request(
      { type: "say", room: "general", text: `m${i}`, cid: `m${i}` },
      (m) => m.cid === `m${i}`,
    );
  }
  const from = phone.messages.length;
  laptop.send({ type: "read", room: "general", seq: 2 });
  assert.deepEqual(await phone.waitFor((m) => m.type === "read", 5000, from), {
    type: "read",
    room: "general",
    seq: 2,
  });
  await laptop.waitFor((m) => m.type === "read" && m.seq === 2);
  assert.equal(bob.messages.some((m) => m.type === "read"), false, "nobody else is told");
  // Never back: an older seq answers with the marker as it stands.
  const back = phone.messages.length;
  laptop.send({ type: "read", room: "general", seq: 1 });
  assert.equal((await phone.waitFor((m) => m.type === "read", 5000, back)).seq, 2);
  // Past the room's latest is clamped to it: messages not yet sent are not read.
  const past = phone.messages.length;
  laptop.send({ type: "read", room: "general", seq: 1000 });
  assert.equal((await phone.waitFor((m) => m.type === "read", 5000, past)).seq, 3);
  const token = phone.messages[0].resume;
  await laptop.close();
  await phone.close();
  const again = await server.connect("Ada", { resume: token });
  assert.deepEqual(again.messages[0].read, { general: 3 });
  assert.deepEqual(again.messages[0].rooms, ["general"]);
});

Deno.test("read in a room not joined is not_in_room; a seq that is not one is bad_request", async () => {
  await using server = await startServer();
  const c = await server.connect("Ada");
  const outside = await ask(c, { type: "read", room: "elsewhere", seq: 1 }, "r1");
  assert.equal(outside.code, "not_in_room");
  await join(c, "general");
  for (const seq of [-1, 1.5, "2", undefined]) {
    const bad = await ask(c, { type: "read", room: "general", seq }, `r-${seq}`);
    assert.equal(bad.code, "bad_request", JSON.stringify(seq));
    assert.equal(bad.message, "Cannot mark read: seq must be a seq (integer ≥ 0)");
  }
});
