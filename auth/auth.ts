/**
 * Access control at the hello: a shared password, an HS256 token, or both. Off by default, for a
 * LAN. Secrets are compared in constant time and never logged.
 */
import type { JwtVerifier } from "./jwt.ts";
import { type Hello, nameProblem } from "../protocol/protocol.ts";

/** The outcome of checking a hello: the name to register, or why not. */
export type AuthResult =
  | {
    ok: true;
    name: string;
    /** True when a token proved the identity: the name may take over its own older connection. */
    verified: boolean;
    /** When the credential expires, in ms since the epoch. */
    expiresAt?: number;
  }
  | { ok: false; reason: string };

/** Checks a hello's credentials. */
export type Authenticator = (hello: Hello) => AuthResult | Promise<AuthResult>;

/** Options for {@linkcode createAuthenticator}. */
export interface AuthOptions {
  password: string | null;
  jwt: JwtVerifier | null;
}

/** The close reason of a hello whose shared password is missing or wrong. */
export const PASSWORD_REFUSED = "password required or wrong";

/** Compares two strings in time that depends only on their lengths, not on where they differ. */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ (y[i % Math.max(1, y.length)] ?? 0);
  return diff === 0;
}

/** Builds the hello check; with neither a password nor a JWT secret every valid name is let in. */
export function createAuthenticator(options: AuthOptions): Authenticator {
  const { password, jwt } = options;
  const open = (hello: Hello): AuthResult =>
    hello.name === undefined
      ? { ok: false, reason: "hello needs a name" }
      : { ok: true, name: hello.name, verified: false };
  // Close reasons a client can act on: "password" or "token" says which sign-in is wanted.
  const passwordOk = (hello: Hello) =>
    password === null ||
    (hello.password !== undefined && timingSafeEqual(hello.password, password));
  if (jwt === null) {
    return (hello) => passwordOk(hello) ? open(hello) : { ok: false, reason: PASSWORD_REFUSED };
  }
  return async (hello) => {
    if (!passwordOk(hello)) return { ok: false, reason: PASSWORD_REFUSED };
    if (hello.token === undefined) return { ok: false, reason: "token required" };
    const result = await jwt(hello.token);
    if (!result.ok) return { ok: false, reason: "token invalid or expired" };
    if (nameProblem(result.name) !== null) {
      return { ok: false, reason: "token names an invalid name" };
    }
    return result.exp === undefined
      ? { ok: true, name: result.name, verified: true }
      : { ok: true, name: result.name, verified: true, expiresAt: result.exp };
  };
}
