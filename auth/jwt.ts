/**
 * HS256 JSON Web Token verification with Web Crypto alone, for `--jwt-secret` logins; `signJwt`
 * makes tokens for tests and for operators who mint their own.
 *
 * Only HS256 is accepted. The algorithm is fixed by the verifier, never chosen by the token, so
 * `alg: none` and the RS256/HS256 confusion attack are refused before any signature is checked.
 *
 * @example
 * ```ts
 * const verify = await createJwtVerifier("a long random secret");
 * const token = await signJwt({ sub: "alice", exp: Date.now() / 1000 + 3600 }, "a long random secret");
 * const result = await verify(token); // { ok: true, name: "alice", exp: ... }
 * ```
 */

/** Longest token accepted, in characters; longer ones are refused before any decoding. */
export const MAX_JWT_CHARS = 8192;
/** Clock skew allowed when checking `exp` and `nbf`, in seconds. */
export const DEFAULT_JWT_LEEWAY_SECONDS = 0;

/** The outcome of verifying one token: the user's name, or why the token was refused. */
export type JwtResult =
  | {
    ok: true;
    /** From the `sub` claim, or from `name` when `sub` is absent. */
    name: string;
    /** When the token expires, in ms since the epoch (the `exp` claim × 1000), if it does. */
    exp?: number;
  }
  | { ok: false; reason: string };

/** Checks one token; never throws for a bad token, only answers `{ ok: false }`. */
export type JwtVerifier = (token: string) => Promise<JwtResult>;

/** Options for {@linkcode createJwtVerifier}. */
export interface JwtVerifierOptions {
  /** The clock, in ms since the epoch. @default () => Date.now() */
  now?: () => number;
  /** Clock skew allowed for `exp` and `nbf`, in seconds. @default 0 */
  leewaySeconds?: number;
}

/** Options for {@linkcode signJwt}. */
export interface SignJwtOptions {
  /**
   * The header to write. The signature is always HMAC-SHA256 whatever this says; tests use it to
   * build tokens that lie about their algorithm.
   * @default { alg: "HS256", typ: "JWT" }
   */
  header?: Record<string, unknown>;
}

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
/** One JWT segment: unpadded base64url. */
const SEGMENT_PATTERN = /^[A-Za-z0-9_-]*$/;
/** An HMAC-SHA256 tag is 32 bytes, which is 43 base64url characters. */
const SIGNATURE_CHARS = 43;

function importKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [usage],
  );
}

/**
 * Creates a verifier for HS256 tokens signed with `secret`.
 *
 * Use a secret of at least 32 random bytes; an empty one is refused.
 */
export async function createJwtVerifier(
  secret: string,
  options: JwtVerifierOptions = {},
): Promise<JwtVerifier> {
  if (secret.length === 0) throw new Error("Cannot create JWT verifier: secret is empty");
  const leeway = options.leewaySeconds ?? DEFAULT_JWT_LEEWAY_SECONDS;
  if (!Number.isFinite(leeway) || leeway < 0) {
    throw new Error("Cannot create JWT verifier: leewaySeconds must be a number ≥ 0");
  }
  const leewayMs = leeway * 1000;
  const now = options.now ?? (() => Date.now());
  const key = await importKey(secret, "verify");

  return async (token: string): Promise<JwtResult> => {
    if (typeof token !== "string" || token.length === 0) return refuse("token is empty");
    if (token.length > MAX_JWT_CHARS) return refuse(`token is over ${MAX_JWT_CHARS} characters`);
    const parts = token.split(".");
    if (parts.length !== 3) return refuse("token must have three dot-separated segments");
    const [headerPart, payloadPart, signaturePart] = parts;

    // The header is read first so a token naming another algorithm is refused outright, rather
    // than checked with a key meant for something else.
    const header = decodeJsonSegment(headerPart);
    if (header === null) return refuse("header is not base64url-encoded JSON object");
    if (header.alg !== "HS256") return refuse(`algorithm ${describe(header.alg)} is not HS256`);
    if (
      header.typ !== undefined &&
      (typeof header.typ !== "string" || header.typ.toUpperCase() !== "JWT")
    ) {
      return refuse("header typ must be JWT");
    }
    // RFC 7515 §4.1.11: a verifier that does not understand a critical extension must refuse.
    if (header.crit !== undefined) return refuse("header crit extensions are not supported");

    if (signaturePart.length !== SIGNATURE_CHARS) return refuse("signature does not match");
    const signature = decodeSegment(signaturePart);
    if (signature === null) return refuse("signature is not base64url");
    // crypto.subtle.verify compares in constant time, so timing tells an attacker nothing.
    const signed = encoder.encode(`${headerPart}.${payloadPart}`);
    if (!await crypto.subtle.verify("HMAC", key, signature, signed)) {
      return refuse("signature does not match");
    }

    const claims = decodeJsonSegment(payloadPart);
    if (claims === null) return refuse("payload is not base64url-encoded JSON object");
    const t = now();
    if (claims.exp !== undefined) {
      if (typeof claims.exp !== "number" || !Number.isFinite(claims.exp)) {
        return refuse("exp must be a number of seconds");
      }
      // RFC 7519 §4.1.4: the token is valid only before exp.
      if (t >= claims.exp * 1000 + leewayMs) return refuse("token has expired");
    }
    if (claims.nbf !== undefined) {
      if (typeof claims.nbf !== "number" || !Number.isFinite(claims.nbf)) {
        return refuse("nbf must be a number of seconds");
      }
      if (t < claims.nbf * 1000 - leewayMs) return refuse("token is not valid yet");
    }
    const name = claims.sub !== undefined ? claims.sub : claims.name;
    const source = claims.sub !== undefined ? "sub" : "name";
    if (name === undefined) return refuse("token has neither sub nor name");
    if (typeof name !== "string") return refuse(`${source} must be a string`);
    if (name.length === 0) return refuse(`${source} is empty`);
    return claims.exp === undefined
      ? { ok: true, name }
      : { ok: true, name, exp: claims.exp * 1000 };
  };
}

/**
 * Signs `payload` as an HS256 token. Times in claims are seconds since the epoch, as RFC 7519
 * says (`exp: Math.floor(Date.now() / 1000) + 3600`).
 */
export async function signJwt(
  payload: Record<string, unknown>,
  secret: string,
  options: SignJwtOptions = {},
): Promise<string> {
  if (secret.length === 0) throw new Error("Cannot sign JWT: secret is empty");
  const header = options.header ?? { alg: "HS256", typ: "JWT" };
  const signingInput = `${encodeSegment(encoder.encode(JSON.stringify(header)))}.${
    encodeSegment(encoder.encode(JSON.stringify(payload)))
  }`;
  const key = await importKey(secret, "sign");
  const signature = await crypto.subtle.sign("HMAC", key, encoder.encode(signingInput));
  return `${signingInput}.${encodeSegment(new Uint8Array(signature))}`;
}

function refuse(reason: string): JwtResult {
  return { ok: false, reason: `Cannot accept token: ${reason}` };
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value.slice(0, 16)) : "missing";
}

/** Encodes bytes as unpadded base64url. */
function encodeSegment(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes unpadded base64url strictly: padding, `+`, `/` and stray characters are refused. */
function decodeSegment(segment: string): Uint8Array<ArrayBuffer> | null {
  // A length of 1 mod 4 cannot come from any byte string.
  if (!SEGMENT_PATTERN.test(segment) || segment.length % 4 === 1) return null;
  let binary: string;
  try {
    binary = atob(segment.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    return null;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  // Unused trailing bits must be zero, or two spellings would decode to the same bytes.
  return encodeSegment(bytes) === segment ? bytes : null;
}

/** Decodes a segment holding a JSON object, or returns null. */
function decodeJsonSegment(segment: string): Record<string, unknown> | null {
  const bytes = decodeSegment(segment);
  if (bytes === null || bytes.length === 0) return null;
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  return value as Record<string, unknown>; // checked just above: a plain JSON object
}
