/**
 * Specification of password hashing (auth/password.ts): scrypt at OWASP's parameters, a
 * self-describing string whose parameters verification reads back, a constant-time compare, the
 * password rules, and the bound on hashes at work and waiting.
 */
import assert from "node:assert/strict";
import { scrypt, timingSafeEqual } from "node:crypto";
import {
  DEFAULT_COMPARE,
  DEFAULT_SCRYPT_PARAMS,
  type Derive,
  encodePasswordHash,
  HasherBusyError,
  MAX_CONCURRENT_HASHES,
  MAX_PASSWORD_BYTES,
  MAX_QUEUED_HASHES,
  MIN_PASSWORD_CHARS,
  parsePasswordHash,
  PasswordHasher,
  passwordProblem,
  SALT_BYTES,
  type ScryptParams,
} from "../auth/password.ts";

/** Parameters cheap enough for tests that only need a real scrypt, not a slow one. */
const CHEAP: ScryptParams = { logN: 10, r: 8, p: 1 };

Deno.test("the default parameters are OWASP's scrypt minimum: N=2^17, r=8, p=1, 16-byte salt", () => {
  assert.deepEqual(DEFAULT_SCRYPT_PARAMS, { logN: 17, r: 8, p: 1 });
  assert.equal(SALT_BYTES, 16);
  assert.equal(MIN_PASSWORD_CHARS, 8);
  assert.equal(MAX_PASSWORD_BYTES, 1024);
  assert.ok(MAX_CONCURRENT_HASHES >= 1 && MAX_QUEUED_HASHES >= 1);
});

Deno.test("a password hashed at the default parameters verifies, and a wrong one does not", async () => {
  const hasher = new PasswordHasher();
  const stored = await hasher.hash("correct horse battery staple");
  assert.match(stored, /^\$scrypt\$ln=17,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.deepEqual(await hasher.verify("correct horse battery staple", stored), {
    ok: true,
    needsRehash: false,
  });
  assert.deepEqual(await hasher.verify("correct horse battery stapler", stored), {
    ok: false,
    reason: "mismatch",
  });
});

Deno.test("the hash is scrypt itself: RFC 7914's test vector comes out of the string's parameters", async () => {
  // RFC 7914 §12: P="password", S="NaCl", N=1024, r=8, p=16, dkLen=64.
  const expected = "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162" +
    "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640";
  const stored = encodePasswordHash(
    { logN: 10, r: 8, p: 16 },
    new TextEncoder().encode("NaCl"),
    Uint8Array.from(expected.match(/../g)!.map((h) => parseInt(h, 16))),
  );
  const hasher = new PasswordHasher({ params: { logN: 10, r: 8, p: 16 } });
  assert.deepEqual(await hasher.verify("password", stored), { ok: true, needsRehash: false });
  assert.deepEqual(await hasher.verify("Password", stored), { ok: false, reason: "mismatch" });
});

Deno.test("each hash has its own random salt", async () => {
  const hasher = new PasswordHasher({ params: CHEAP });
  const a = await hasher.hash("same password");
  const b = await hasher.hash("same password");
  assert.notEqual(a, b);
  assert.notEqual(parsePasswordHash(a)?.salt.join(), parsePasswordHash(b)?.salt.join());
  assert.equal(parsePasswordHash(a)?.salt.length, SALT_BYTES);
});

Deno.test("verify reads the parameters from the stored string, and asks for a rehash below the current ones", async () => {
  const old = new PasswordHasher({ params: CHEAP });
  const stored = await old.hash("an older password");
  assert.deepEqual(parsePasswordHash(stored)?.params, CHEAP);
  const current = new PasswordHasher({ params: { logN: 11, r: 8, p: 1 } });
  assert.deepEqual(await current.verify("an older password", stored), {
    ok: true,
    needsRehash: true,
  });
  assert.equal(current.needsRehash(stored), true);
  assert.equal(old.needsRehash(stored), false);
  assert.deepEqual(await current.verify("not the password", stored), {
    ok: false,
    reason: "mismatch",
  });
});

Deno.test("a malformed or out-of-bounds stored hash is reported as malformed, never thrown or run", async () => {
  let derived = 0;
  const derive: Derive = (password, salt, keyLength, params) => {
    derived++;
    return realDerive(password, salt, keyLength, params);
  };
  const hasher = new PasswordHasher({ params: CHEAP, derive });
  const good = await hasher.hash("a fine password");
  derived = 0;
  const [, , params, salt, hash] = good.split("$");
  const bad = [
    "",
    "plain text",
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
    `$scrypt$${params}$${salt}`,
    `$scrypt$${params}$${salt}$${hash}$extra`,
    `$scrypt$ln=10,r=8$${salt}$${hash}`,
    `$scrypt$ln=10,r=8,p=1,x=2$${salt}$${hash}`,
    `$scrypt$ln=ten,r=8,p=1$${salt}$${hash}`,
    `$scrypt$ln=010,r=8,p=1$${salt}$${hash}`,
    `$scrypt$ln=31,r=8,p=1$${salt}$${hash}`, // 128 GiB: refused, not attempted
    `$scrypt$ln=17,r=64,p=1$${salt}$${hash}`,
    `$scrypt$ln=10,r=8,p=999$${salt}$${hash}`,
    `$scrypt$ln=10,r=0,p=1$${salt}$${hash}`,
    `$scrypt$${params}$not*base64$${hash}`,
    `$scrypt$${params}$$${hash}`,
    `$scrypt$${params}$${salt}$AAAA`, // 3 bytes: shorter than any hash it could be
    `$scrypt$${params}$${salt}$${hash}${hash}${hash}`, // longer than any hash it made
  ];
  for (const stored of bad) {
    assert.equal(parsePasswordHash(stored), null, stored);
    assert.deepEqual(
      await hasher.verify("a fine password", stored),
      { ok: false, reason: "malformed" },
      stored,
    );
    assert.equal(hasher.needsRehash(stored), true, stored);
  }
  assert.equal(derived, 0, "no malformed string reached scrypt");
});

Deno.test("verify compares with node:crypto's timingSafeEqual, on equal-length buffers", async () => {
  assert.equal(DEFAULT_COMPARE, timingSafeEqual);
  const calls: [number, number][] = [];
  const hasher = new PasswordHasher({
    params: CHEAP,
    compare: (a, b) => {
      calls.push([a.length, b.length]);
      return timingSafeEqual(a, b);
    },
  });
  const stored = await hasher.hash("some password");
  assert.equal((await hasher.verify("some password", stored)).ok, true);
  assert.equal((await hasher.verify("other password", stored)).ok, false);
  assert.deepEqual(calls, [[32, 32], [32, 32]], "every verify goes through the compare");
});

Deno.test("passwords are NFKC-normalized, so one typed composed or decomposed verifies", async () => {
  const hasher = new PasswordHasher({ params: CHEAP });
  const composed = "caf\u00e9 au lait";
  const decomposed = "cafe\u0301 au lait";
  const stored = await hasher.hash(composed);
  assert.equal((await hasher.verify(decomposed, stored)).ok, true);
});

Deno.test("password rules: at least 8 characters, at most 1024 UTF-8 bytes", async () => {
  assert.equal(passwordProblem("1234567"), "password must be at least 8 characters");
  assert.equal(passwordProblem("😀😀😀😀😀😀😀"), "password must be at least 8 characters");
  assert.equal(passwordProblem("😀😀😀😀😀😀😀😀"), null, "8 code points, 32 bytes");
  assert.equal(passwordProblem("12345678"), null);
  assert.equal(passwordProblem("x".repeat(MAX_PASSWORD_BYTES)), null);
  assert.equal(
    passwordProblem("x".repeat(MAX_PASSWORD_BYTES + 1)),
    "password must be at most 1024 bytes of UTF-8",
  );
  assert.equal(
    passwordProblem("é".repeat(513)),
    "password must be at most 1024 bytes of UTF-8",
    "513 two-byte characters",
  );
  // NFKC may lengthen a string (U+FDFA becomes 18 characters); the bound holds after it too.
  assert.equal(
    passwordProblem("\ufdfa".repeat(100)),
    "password must be at most 1024 bytes of UTF-8",
  );
  const hasher = new PasswordHasher({ params: CHEAP });
  await assert.rejects(hasher.hash("short"), /^Error: Cannot hash password: password must be/);
  assert.deepEqual(
    await hasher.verify("x".repeat(MAX_PASSWORD_BYTES + 1), await hasher.hash("12345678")),
    { ok: false, reason: "mismatch" },
    "an over-long attempt is a mismatch, never hashed",
  );
});

Deno.test("at most MAX_CONCURRENT_HASHES run at once; the rest wait their turn in order", async () => {
  const gate = controlledDerive();
  const hasher = new PasswordHasher({ params: CHEAP, derive: gate.derive });
  const results = Array.from(
    { length: MAX_CONCURRENT_HASHES + 3 },
    (_, i) => hasher.hash(`password number ${i}`),
  );
  await tick();
  assert.equal(gate.running, MAX_CONCURRENT_HASHES);
  assert.equal(hasher.active, MAX_CONCURRENT_HASHES);
  assert.equal(hasher.queued, 3);
  gate.finishOne();
  await tick();
  assert.equal(gate.running, MAX_CONCURRENT_HASHES, "a waiting hash takes the freed slot");
  assert.equal(hasher.queued, 2);
  for (let i = 0; i < 10 && gate.running > 0; i++) {
    gate.finishOne();
    await tick();
  }
  await Promise.all(results);
  assert.equal(gate.maxRunning, MAX_CONCURRENT_HASHES);
  assert.deepEqual(
    gate.order,
    results.map((_, i) => `password number ${i}`),
    "first come, first served",
  );
  assert.equal(hasher.active, 0);
  assert.equal(hasher.queued, 0);
});

Deno.test("past MAX_QUEUED_HASHES waiting, a hash or verify is refused at once with HasherBusyError", async () => {
  const gate = controlledDerive();
  const hasher = new PasswordHasher({ params: CHEAP, derive: gate.derive });
  const stored = await withGateOpen(gate, () => hasher.hash("the stored one"));
  const accepted = Array.from(
    { length: MAX_CONCURRENT_HASHES + MAX_QUEUED_HASHES },
    () => hasher.verify("the stored one", stored),
  );
  await tick();
  assert.equal(hasher.queued, MAX_QUEUED_HASHES);
  await assert.rejects(
    hasher.hash("one too many"),
    (e: Error) =>
      e instanceof HasherBusyError &&
      e.message ===
        `Cannot hash password: ${MAX_QUEUED_HASHES} hashes are already waiting; try again shortly`,
  );
  await assert.rejects(hasher.verify("the stored one", stored), HasherBusyError);
  assert.equal(hasher.queued, MAX_QUEUED_HASHES, "a refused call does not queue");
  await withGateOpen(gate, async () => {
    for (const r of await Promise.all(accepted)) assert.equal(r.ok, true);
  });
  assert.equal((await withGateOpen(gate, () => hasher.verify("the stored one", stored))).ok, true);
});

Deno.test("a failing derive frees its slot and rejects only its own call", async () => {
  let fail = true;
  const hasher = new PasswordHasher({
    params: CHEAP,
    maxConcurrent: 1,
    derive: (password, salt, keyLength, params) =>
      fail ? Promise.reject(new Error("boom")) : realDerive(password, salt, keyLength, params),
  });
  await assert.rejects(hasher.hash("first password"), /boom/);
  fail = false;
  assert.equal(
    (await hasher.verify("first password", await hasher.hash("first password"))).ok,
    true,
  );
  assert.equal(hasher.active, 0);
});

Deno.test("hashing runs off the main thread: timers keep firing during a default-parameter hash", async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  try {
    await new PasswordHasher().hash("a password for the clock");
  } finally {
    clearInterval(timer);
  }
  assert.ok(ticks >= 3, `only ${ticks} timer ticks during the hash`);
});

// ---------------------------------------------------------------------------------------------

function realDerive(
  password: Uint8Array,
  salt: Uint8Array,
  keyLength: number,
  params: ScryptParams,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keyLength, {
      N: 2 ** params.logN,
      r: params.r,
      p: params.p,
      maxmem: 256 * 1024 * 1024,
    }, (e, key) => e ? reject(e) : resolve(new Uint8Array(key)))
  );
}

/**
 * A fake derive for the bound tests: fast and deterministic (not scrypt), and its calls finish only
 * when the test says so, or at once while the gate is open.
 */
function controlledDerive() {
  const waiting: (() => void)[] = [];
  const gate = {
    running: 0,
    maxRunning: 0,
    open: false,
    order: [] as string[],
    derive: (async (password, salt, keyLength) => {
      gate.order.push(new TextDecoder().decode(password));
      gate.running++;
      gate.maxRunning = Math.max(gate.maxRunning, gate.running);
      if (!gate.open) await new Promise<void>((resolve) => waiting.push(resolve));
      gate.running--;
      return fakeKey(password, salt, keyLength);
    }) as Derive,
    finishOne() {
      waiting.shift()?.();
    },
    finishAll() {
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
  return gate;
}

/** Deterministic bytes from a password and salt: stands in for scrypt where speed matters. */
function fakeKey(password: Uint8Array, salt: Uint8Array, keyLength: number): Uint8Array {
  const key = new Uint8Array(keyLength);
  for (let i = 0; i < keyLength; i++) {
    key[i] = (password[i % password.length] * 31 + salt[i % salt.length] * 7 + i) & 0xff;
  }
  return key;
}

/** Runs `fn` with every call of the fake derive finishing at once, those waiting included. */
async function withGateOpen<T>(
  gate: ReturnType<typeof controlledDerive>,
  fn: () => Promise<T>,
): Promise<T> {
  gate.open = true;
  gate.finishAll();
  try {
    return await fn();
  } finally {
    gate.open = false;
  }
}

/** Lets promise callbacks and I/O callbacks run. */
function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
