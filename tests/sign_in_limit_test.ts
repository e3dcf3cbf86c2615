/**
 * Specification of the sign-in limiter (auth/sign_in_limit.ts): failed password attempts counted
 * per account and per address in a sliding window, with the retry-after a refused client is told,
 * on a fake clock.
 */
import assert from "node:assert/strict";
import {
  addressKey,
  FailureWindow,
  MAX_FAILURES_PER_ACCOUNT,
  MAX_FAILURES_PER_ADDRESS,
  MAX_TRACKED_KEYS,
  SIGN_IN_WINDOW_MS,
  SignInLimiter,
} from "../auth/sign_in_limit.ts";

const MINUTE = 60_000;

Deno.test("the limits: 10 failures per account and 30 per address in 15 minutes", () => {
  assert.equal(MAX_FAILURES_PER_ACCOUNT, 10);
  assert.equal(MAX_FAILURES_PER_ADDRESS, 30);
  assert.equal(SIGN_IN_WINDOW_MS, 15 * MINUTE);
});

Deno.test("an account is refused after 10 failures, from any address, until the first one ages out", () => {
  let now = 1_000_000;
  const limiter = new SignInLimiter({ now: () => now });
  for (let i = 0; i < MAX_FAILURES_PER_ACCOUNT; i++) {
    assert.deepEqual(limiter.check("alice", `10.0.0.${i}`), { ok: true }, `attempt ${i + 1}`);
    limiter.failed("alice", `10.0.0.${i}`);
    now += MINUTE;
  }
  // Ten failures, one a minute: the first ages out 15 minutes after it, 5 minutes from now.
  assert.deepEqual(limiter.check("alice", "192.0.2.1"), {
    ok: false,
    scope: "account",
    retryAfterMs: 5 * MINUTE,
  });
  assert.deepEqual(limiter.check("bob", "10.0.0.1"), { ok: true }, "other accounts are not held");
  now += 5 * MINUTE - 1;
  assert.equal(limiter.check("alice", "192.0.2.1").ok, false);
  assert.deepEqual(limiter.check("alice", "192.0.2.1"), {
    ok: false,
    scope: "account",
    retryAfterMs: 1,
  });
  now += 1;
  assert.deepEqual(limiter.check("alice", "192.0.2.1"), { ok: true }, "one more try");
  limiter.failed("alice", "192.0.2.1");
  assert.deepEqual(limiter.check("alice", "192.0.2.1"), {
    ok: false,
    scope: "account",
    retryAfterMs: MINUTE, // the second failure ages out a minute later
  });
});

Deno.test("an address is refused after 30 failures across accounts", () => {
  let now = 0;
  const limiter = new SignInLimiter({ now: () => now });
  for (let i = 0; i < MAX_FAILURES_PER_ADDRESS; i++) {
    assert.equal(limiter.check(`user${i}`, "203.0.113.9").ok, true, `attempt ${i + 1}`);
    limiter.failed(`user${i}`, "203.0.113.9");
    now += 1000;
  }
  assert.deepEqual(limiter.check("someone-new", "203.0.113.9"), {
    ok: false,
    scope: "address",
    retryAfterMs: SIGN_IN_WINDOW_MS - 30_000,
  });
  assert.equal(limiter.check("someone-new", "203.0.113.10").ok, true, "other addresses go on");
});

Deno.test("when both are over, the longer wait is told", () => {
  let now = 0;
  const limiter = new SignInLimiter({ now: () => now, perAccount: 2, perAddress: 2 });
  limiter.failed("alice", "a1");
  now += 1000;
  limiter.failed("bob", "a1"); // a1 is full: it frees at 15 min
  now += 1000;
  limiter.failed("alice", "a2");
  now += 1000;
  limiter.failed("carol", "a2"); // alice is full: frees at 15 min; a2 frees at 15 min + 2 s
  assert.deepEqual(limiter.check("alice", "a1"), {
    ok: false,
    scope: "account",
    retryAfterMs: SIGN_IN_WINDOW_MS - 3000,
  });
  assert.deepEqual(limiter.check("alice", "a2"), {
    ok: false,
    scope: "address",
    retryAfterMs: SIGN_IN_WINDOW_MS - 1000,
  });
});

Deno.test("a success forgives nothing: the bound is on guesses, not on guesses in a row", () => {
  const now = 0;
  const limiter = new SignInLimiter({ now: () => now, perAccount: 3 });
  limiter.failed("alice", "x");
  limiter.failed("alice", "x");
  limiter.succeeded("alice", "x");
  limiter.failed("alice", "x");
  assert.equal(limiter.check("alice", "x").ok, false);
});

Deno.test("a failure window keeps at most its limit of times per key and maxTracked keys", () => {
  let now = 0;
  const window = new FailureWindow({ limit: 3, windowMs: 1000, maxTracked: 2, now: () => now });
  for (let i = 0; i < 10; i++) window.record("a");
  assert.equal(window.timesOf("a"), 3, "older failures than the limit cannot matter");
  window.record("b");
  now += 10;
  window.record("c"); // over maxTracked: the key touched longest ago ("a") goes
  assert.equal(window.size, 2);
  assert.equal(window.timesOf("a"), 0);
  assert.equal(window.retryAfterMs("a"), 0);
  assert.equal(window.timesOf("b"), 1);
  now += 1000;
  assert.equal(window.retryAfterMs("b"), 0);
  window.sweep();
  assert.equal(window.size, 0, "a sweep drops keys whose failures all aged out");
  assert.equal(MAX_TRACKED_KEYS, 20_000);
});

Deno.test("a clock that steps back does not extend a refusal past the window", () => {
  let now = 100_000;
  const window = new FailureWindow({ limit: 1, windowMs: 1000, now: () => now });
  window.record("a");
  now = 50_000;
  const wait = window.retryAfterMs("a");
  assert.ok(wait <= 1000, `told to wait ${wait} ms`);
});

Deno.test("addresses are counted by IPv4 address and by IPv6 /64", () => {
  const cases: [string, string][] = [
    ["203.0.113.9", "203.0.113.9"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"],
    ["2001:0DB8:0001:0002:ffff::1", "2001:db8:1:2::/64"],
    ["[2001:db8:1:2::7]", "2001:db8:1:2::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["::ffff:198.51.100.7", "198.51.100.7"],
    ["::ffff:c633:6407", "198.51.100.7"],
    ["not an address", "not an address"],
    ["1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8:9"],
    ["1::2::3", "1::2::3"],
    ["::ffff:300.1.1.1", "::ffff:300.1.1.1"],
  ];
  for (const [address, key] of cases) assert.equal(addressKey(address), key, address);
  // Two hosts of one /64 share a window; another /64 does not.
  const limiter = new SignInLimiter({ perAddress: 1 });
  limiter.failed("a", addressKey("2001:db8:1:2::10"));
  assert.equal(limiter.check("b", addressKey("2001:db8:1:2::11")).ok, false);
  assert.equal(limiter.check("b", addressKey("2001:db8:1:3::11")).ok, true);
});
