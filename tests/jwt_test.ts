/** Specification of HS256 token verification: what is accepted, and every way a token is refused. */
import { createJwtVerifier, type JwtResult, MAX_JWT_CHARS, signJwt } from "../auth/jwt.ts";

const SECRET = "test-secret-that-is-long-enough-for-hs256";
/** A fixed clock: 2026-11-21T14:00:00Z, in ms. */
const NOW_MS = Date.UTC(2026, 10, 21, 14, 0, 0);
const NOW_S = NOW_MS / 1000;

function verifier(options: { leewaySeconds?: number } = {}) {
  return createJwtVerifier(SECRET, { now: () => NOW_MS, ...options });
}

function assertOk(result: JwtResult, name: string, exp?: number): void {
  if (!result.ok) throw new Error(`expected ok, got refused: ${result.reason}`);
  if (result.name !== name) throw new Error(`expected name ${name}, got ${result.name}`);
  if (result.exp !== exp) throw new Error(`expected exp ${exp}, got ${result.exp}`);
}

function assertRefused(result: JwtResult, reasonPart: string): void {
  if (result.ok) throw new Error(`expected refusal (${reasonPart}), got ok for ${result.name}`);
  if (!result.reason.startsWith("Cannot accept token: ")) {
    throw new Error(`reason should read "Cannot accept token: …", got ${result.reason}`);
  }
  if (!result.reason.includes(reasonPart)) {
    throw new Error(`expected reason containing "${reasonPart}", got "${result.reason}"`);
  }
}

function b64url(text: string): string {
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

Deno.test("a token signed with the secret yields its sub as the name", async () => {
  const verify = await verifier();
  assertOk(await verify(await signJwt({ sub: "alice" }, SECRET)), "alice");
});

Deno.test("exp is returned in milliseconds so the server can close the connection then", async () => {
  const verify = await verifier();
  const token = await signJwt({ sub: "alice", exp: NOW_S + 60 }, SECRET);
  assertOk(await verify(token), "alice", (NOW_S + 60) * 1000);
});

Deno.test("a token whose exp has passed is refused, exactly at exp too", async () => {
  const verify = await verifier();
  assertRefused(await verify(await signJwt({ sub: "alice", exp: NOW_S - 1 }, SECRET)), "expired");
  assertRefused(await verify(await signJwt({ sub: "alice", exp: NOW_S }, SECRET)), "expired");
});

Deno.test("leeway allows a just-expired token", async () => {
  const verify = await verifier({ leewaySeconds: 5 });
  const token = await signJwt({ sub: "alice", exp: NOW_S - 3 }, SECRET);
  assertOk(await verify(token), "alice", (NOW_S - 3) * 1000);
});

Deno.test("a token before its nbf is refused; from nbf on it is accepted", async () => {
  const verify = await verifier();
  assertRefused(
    await verify(await signJwt({ sub: "alice", nbf: NOW_S + 10 }, SECRET)),
    "not valid yet",
  );
  assertOk(await verify(await signJwt({ sub: "alice", nbf: NOW_S }, SECRET)), "alice");
});

Deno.test("exp and nbf that are not numbers are refused", async () => {
  const verify = await verifier();
  assertRefused(await verify(await signJwt({ sub: "a", exp: "soon" }, SECRET)), "exp must be");
  assertRefused(await verify(await signJwt({ sub: "a", nbf: null }, SECRET)), "nbf must be");
});

Deno.test("a token with a changed payload (forged signature) is refused", async () => {
  const verify = await verifier();
  const [header, , signature] = (await signJwt({ sub: "alice" }, SECRET)).split(".");
  const forged = `${header}.${b64url(JSON.stringify({ sub: "admin" }))}.${signature}`;
  assertRefused(await verify(forged), "signature does not match");
});

Deno.test("a token signed with another secret is refused", async () => {
  const verify = await verifier();
  const token = await signJwt({ sub: "alice" }, "some-other-secret");
  assertRefused(await verify(token), "signature does not match");
});

Deno.test("alg none is refused, with or without a signature", async () => {
  const verify = await verifier();
  const header = b64url(JSON.stringify({ alg: "none", typ: "JWT" }));
  const payload = b64url(JSON.stringify({ sub: "alice" }));
  assertRefused(await verify(`${header}.${payload}.`), "not HS256");
  const signed = await signJwt({ sub: "alice" }, SECRET, { header: { alg: "none" } });
  assertRefused(await verify(signed), "not HS256");
});

Deno.test("an RS256 header is refused even when the HMAC signature is valid", async () => {
  const verify = await verifier();
  const token = await signJwt({ sub: "alice" }, SECRET, { header: { alg: "RS256", typ: "JWT" } });
  assertRefused(await verify(token), '"RS256" is not HS256');
});

Deno.test("a header without alg, with a foreign typ, or with crit is refused", async () => {
  const verify = await verifier();
  const sign = (header: Record<string, unknown>) => signJwt({ sub: "a" }, SECRET, { header });
  assertRefused(await verify(await sign({ typ: "JWT" })), "missing is not HS256");
  assertRefused(await verify(await sign({ alg: "HS256", typ: "JWE" })), "typ must be JWT");
  assertRefused(await verify(await sign({ alg: "HS256", crit: ["exp"] })), "crit");
  assertOk(await verify(await sign({ alg: "HS256" })), "a");
});

Deno.test("malformed tokens are refused without throwing", async () => {
  const verify = await verifier();
  const good = await signJwt({ sub: "alice" }, SECRET);
  const [h, p, s] = good.split(".");
  const notJson = b64url("not json");
  const array = b64url("[1,2]");
  const cases: [string, string][] = [
    ["", "empty"],
    ["abc", "three dot-separated segments"],
    [`${h}.${p}`, "three dot-separated segments"],
    [`${h}.${p}.${s}.x`, "three dot-separated segments"],
    [`${h}!.${p}.${s}`, "header is not"],
    [`${h}=.${p}.${s}`, "header is not"],
    [`${notJson}.${p}.${s}`, "header is not"],
    [`${array}.${p}.${s}`, "header is not"],
    [`${h}.${p}.${s.slice(0, -1)}`, "signature does not match"],
    [`${h}.${p}.${s.slice(0, -1)}*`, "signature is not base64url"],
    ["x".repeat(MAX_JWT_CHARS + 1), `over ${MAX_JWT_CHARS}`],
  ];
  for (const [token, reason] of cases) assertRefused(await verify(token), reason);
});

Deno.test("a validly signed payload that is not a JSON object is refused", async () => {
  const verify = await verifier();
  const header = b64url(JSON.stringify({ alg: "HS256" }));
  for (const payload of [b64url("not json"), b64url('"alice"'), b64url("\xff\xfe")]) {
    // Sign the raw segments by hand, since signJwt only signs objects.
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(SECRET),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const mac = new Uint8Array(
      await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${header}.${payload}`)),
    );
    const token = `${header}.${payload}.${b64url(String.fromCharCode(...mac))}`;
    assertRefused(await verify(token), "payload is not");
  }
});

Deno.test("a token with neither sub nor name is refused", async () => {
  const verify = await verifier();
  assertRefused(await verify(await signJwt({ exp: NOW_S + 60 }, SECRET)), "neither sub nor name");
});

Deno.test("the name claim is used when sub is missing", async () => {
  const verify = await verifier();
  assertOk(await verify(await signJwt({ name: "bob" }, SECRET)), "bob");
});

Deno.test("sub wins over name when both are present", async () => {
  const verify = await verifier();
  assertOk(await verify(await signJwt({ sub: "alice", name: "bob" }, SECRET)), "alice");
});

Deno.test("a name that is not a non-empty string is refused", async () => {
  const verify = await verifier();
  assertRefused(await verify(await signJwt({ sub: 42 }, SECRET)), "sub must be a string");
  assertRefused(await verify(await signJwt({ name: ["bob"] }, SECRET)), "name must be a string");
  assertRefused(await verify(await signJwt({ sub: "" }, SECRET)), "sub is empty");
});

Deno.test("an empty secret is refused when creating a verifier or signing", async () => {
  let verifierError = "";
  await createJwtVerifier("").catch((e: Error) => verifierError = e.message);
  if (verifierError !== "Cannot create JWT verifier: secret is empty") {
    throw new Error(verifierError);
  }
  let signError = "";
  await signJwt({ sub: "a" }, "").catch((e: Error) => signError = e.message);
  if (signError !== "Cannot sign JWT: secret is empty") throw new Error(signError);
});
