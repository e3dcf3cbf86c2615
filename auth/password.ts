/**
 * Password hashing: scrypt from `node:crypto` at the OWASP Password Storage Cheat Sheet's
 * parameters, a self-describing stored string, a constant-time verify, and a bound on the work.
 *
 * Why these choices:
 * - scrypt, not argon2id: OWASP ranks argon2id first and scrypt next, but scrypt ships with the
 *   runtime (`node:crypto`, OpenSSL's implementation) and needs no native npm package, which
 *   `deno compile` could not embed. OWASP's scrypt minimum is N=2^17, r=8, p=1: 128 MiB and about
 *   0.3-0.7 s of one core per hash on the 2-core test VM. Of the equal-strength alternatives OWASP
 *   lists (2^16/8/2, 2^15/8/3, …) this one spends the most memory and the least CPU per hash,
 *   which is what hurts a GPU attacker most; {@linkcode MAX_CONCURRENT_HASHES} bounds the memory.
 * - The stored string is the PHC string format passlib and others use for scrypt,
 *   `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` (unpadded standard base64), so parameters can be raised
 *   later: old strings still verify with their own parameters, and `needsRehash` says when to
 *   store a fresh hash (at the next successful sign-in, when the password is at hand).
 * - Parameters read from a stored string are bounded (at most {@linkcode MAX_SCRYPT_MEMORY_BYTES})
 *   before anything runs, so a damaged or planted row cannot make one verify take gigabytes.
 * - The password is NFKC-normalized before hashing (NIST SP 800-63B §5.1.1.2), so one typed on a
 *   keyboard that composes `é` and one that does not give the same hash.
 * - `scrypt` is the callback form, which OpenSSL runs on the runtime's thread pool: the event loop
 *   keeps serving everyone else while a hash runs (the tests check timers keep firing).
 * - The work is bounded: at most {@linkcode MAX_CONCURRENT_HASHES} run at once (each holds
 *   128 MiB), at most {@linkcode MAX_QUEUED_HASHES} wait in order, and past that a call is refused
 *   at once with {@linkcode HasherBusyError}, so a burst of sign-ins costs bounded memory and a
 *   bounded wait instead of an unbounded pile of 128 MiB buffers.
 *
 * Nothing here logs: not the password, not the salt, not the hash.
 *
 * Wiring: one `PasswordHasher` per hub (hub.ts; tests pass cheap parameters). hub/sessions.ts's
 * password sign-in asks the sign-in limiter (auth/sign_in_limit.ts) before any hash is spent, then
 * `verify`s, and on `{ ok: true, needsRehash: true }` stores a fresh `hash`; a new account's
 * password and hub/account_commands.ts's `set_password` check `passwordProblem` first (its text is
 * the error the client sees). A {@linkcode HasherBusyError} is answered as "try again" (1013, or
 * `unavailable` with a retry-after), never as a wrong password.
 *
 * @example
 * ```ts
 * import { PasswordHasher } from "./password.ts";
 * const hasher = new PasswordHasher();
 * const stored = await hasher.hash("correct horse battery staple");
 * (await hasher.verify("correct horse battery staple", stored)).ok; // true
 * ```
 */
import { scrypt, timingSafeEqual } from "node:crypto";

/** scrypt's cost parameters: N = 2^logN, block size r, parallelism p. */
export interface ScryptParams {
  logN: number;
  r: number;
  p: number;
}

/** OWASP's minimum for scrypt: N=2^17 (128 MiB with r=8), r=8, p=1. */
export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({
  logN: 17,
  r: 8,
  p: 1,
});
/** Bytes of random salt per hash (OWASP: unique per password; 16 bytes is 128 bits). */
export const SALT_BYTES = 16;
/** Bytes of derived key stored. */
export const HASH_BYTES = 32;
/** Most hashes computed at once; each holds 128 MiB at the default parameters. */
export const MAX_CONCURRENT_HASHES = 2;
/** Most hashes waiting for a slot; about 5 s of waiting at ~0.6 s per hash, two at a time. */
export const MAX_QUEUED_HASHES = 16;
/** Fewest characters (code points) in a new password: NIST SP 800-63B's minimum. */
export const MIN_PASSWORD_CHARS = 8;
/** Most bytes of UTF-8 in a password, before and after NFKC; longer input is refused unhashed. */
export const MAX_PASSWORD_BYTES = 1024;
/** Most memory a stored string's parameters may ask scrypt for (128 × r × N), in bytes. */
export const MAX_SCRYPT_MEMORY_BYTES = 256 * 1024 * 1024;
/** Most parallelism a stored string may ask for; p multiplies the CPU time of one verify. */
const MAX_SCRYPT_P = 16;
/** Bounds on the salt and hash lengths a stored string may carry, in bytes. */
const MIN_STORED_BYTES = { salt: 4, hash: 16 };
const MAX_STORED_BYTES = 64;

/** Derives `keyLength` bytes of scrypt from a password and salt; injectable for tests. */
export type Derive = (
  password: Uint8Array,
  salt: Uint8Array,
  keyLength: number,
  params: ScryptParams,
) => Promise<Uint8Array>;

/** Compares two equal-length byte strings; must take time independent of their contents. */
export type Compare = (a: Uint8Array, b: Uint8Array) => boolean;

/** The compare `verify` uses unless told otherwise: `node:crypto`'s `timingSafeEqual`. */
export const DEFAULT_COMPARE: Compare = timingSafeEqual;

/** The outcome of a verify: a match (and whether to store a fresh hash), or why not. */
export type VerifyResult =
  | { ok: true; needsRehash: boolean }
  | {
    ok: false;
    /** `mismatch`: the wrong password; `malformed`: the stored string is not one this reads. */
    reason: "mismatch" | "malformed";
  };

/** Thrown when the most hashes allowed already wait: the caller should retry later. */
export class HasherBusyError extends Error {
  override name = "HasherBusyError";
  /** How many hashes were waiting. */
  readonly waiting: number;
  constructor(waiting: number) {
    super(`Cannot hash password: ${waiting} hashes are already waiting; try again shortly`);
    this.waiting = waiting;
  }
}

/** Options for {@linkcode PasswordHasher}. */
export interface PasswordHasherOptions {
  /** Parameters of new hashes. @default {@linkcode DEFAULT_SCRYPT_PARAMS} */
  params?: ScryptParams;
  /** @default {@linkcode MAX_CONCURRENT_HASHES} */
  maxConcurrent?: number;
  /** @default {@linkcode MAX_QUEUED_HASHES} */
  maxQueued?: number;
  /** @default scrypt from node:crypto, on the thread pool */
  derive?: Derive;
  /** @default {@linkcode DEFAULT_COMPARE} */
  compare?: Compare;
  /** Fills a salt. @default crypto.getRandomValues */
  randomBytes?: (bytes: Uint8Array) => void;
}

/** Hashes and verifies passwords, with at most `maxConcurrent` hashes at work at once. */
export class PasswordHasher {
  #params: ScryptParams;
  #maxConcurrent: number;
  #maxQueued: number;
  #derive: Derive;
  #compare: Compare;
  #randomBytes: (bytes: Uint8Array) => void;
  #active = 0;
  #waiting: (() => void)[] = [];

  constructor(options: PasswordHasherOptions = {}) {
    this.#params = { ...(options.params ?? DEFAULT_SCRYPT_PARAMS) };
    if (!paramsInBounds(this.#params)) {
      throw new Error("Cannot make a password hasher: scrypt parameters out of bounds");
    }
    this.#maxConcurrent = options.maxConcurrent ?? MAX_CONCURRENT_HASHES;
    this.#maxQueued = options.maxQueued ?? MAX_QUEUED_HASHES;
    this.#derive = options.derive ?? scryptDerive;
    this.#compare = options.compare ?? DEFAULT_COMPARE;
    this.#randomBytes = options.randomBytes ?? ((b) => crypto.getRandomValues(b));
  }

  /** Hashes running now. */
  get active(): number {
    return this.#active;
  }

  /** Hashes waiting for a slot. */
  get queued(): number {
    return this.#waiting.length;
  }

  /**
   * The stored string for `password` at the current parameters. Rejects with "Cannot hash
   * password: <rule>" when {@linkcode passwordProblem} objects, and with
   * {@linkcode HasherBusyError} when too many hashes wait.
   */
  async hash(password: string): Promise<string> {
    const problem = passwordProblem(password);
    if (problem !== null) throw new Error(`Cannot hash password: ${problem}`);
    const salt = new Uint8Array(SALT_BYTES);
    this.#randomBytes(salt);
    const params = { ...this.#params };
    const key = await this.#run(() =>
      this.#derive(passwordBytes(password), salt, HASH_BYTES, params)
    );
    return encodePasswordHash(params, salt, key);
  }

  /**
   * Whether `password` is the one `stored` was made from, compared in constant time. A stored
   * string this cannot read (or whose parameters are out of bounds) is `malformed` and costs no
   * hash; a password over {@linkcode MAX_PASSWORD_BYTES} is a `mismatch` and costs none either.
   * Rejects only with {@linkcode HasherBusyError} or when scrypt itself fails.
   */
  async verify(password: string, stored: string): Promise<VerifyResult> {
    const parsed = parsePasswordHash(stored);
    if (parsed === null) return { ok: false, reason: "malformed" };
    if (tooLong(password)) return { ok: false, reason: "mismatch" };
    const key = await this.#run(() =>
      this.#derive(passwordBytes(password), parsed.salt, parsed.hash.length, parsed.params)
    );
    if (!this.#compare(key, parsed.hash)) return { ok: false, reason: "mismatch" };
    return { ok: true, needsRehash: this.#weakerThanCurrent(parsed.params) };
  }

  /** Whether `stored` should be replaced by a hash at the current parameters. */
  needsRehash(stored: string): boolean {
    const parsed = parsePasswordHash(stored);
    return parsed === null || this.#weakerThanCurrent(parsed.params) ||
      parsed.salt.length < SALT_BYTES || parsed.hash.length < HASH_BYTES;
  }

  #weakerThanCurrent(p: ScryptParams): boolean {
    const c = this.#params;
    return p.logN < c.logN || p.r < c.r || p.p < c.p;
  }

  /** Runs `work` in a slot: at once, after those before it, or not at all when the queue is full. */
  async #run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#maxConcurrent) {
      if (this.#waiting.length >= this.#maxQueued) throw new HasherBusyError(this.#waiting.length);
      // The slot is handed over by the finishing call, so #active never dips and a newcomer
      // cannot overtake one that waited.
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#active++;
    }
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#active--;
    }
  }
}

/**
 * Why `password` cannot be set, or null: at least {@linkcode MIN_PASSWORD_CHARS} code points, at
 * most {@linkcode MAX_PASSWORD_BYTES} bytes of UTF-8 as given and after NFKC. Any character is
 * allowed (NIST SP 800-63B: no composition rules).
 */
export function passwordProblem(password: string): string | null {
  if (tooLong(password)) return `password must be at most ${MAX_PASSWORD_BYTES} bytes of UTF-8`;
  let chars = 0;
  for (const _ of password.normalize("NFKC")) chars++;
  if (chars < MIN_PASSWORD_CHARS) {
    return `password must be at least ${MIN_PASSWORD_CHARS} characters`;
  }
  return null;
}

/** A stored string read back: its parameters, salt and hash. */
export interface ParsedPasswordHash {
  params: ScryptParams;
  salt: Uint8Array;
  hash: Uint8Array;
}

const PHC_PATTERN =
  /^\$scrypt\$ln=([1-9]\d?),r=([1-9]\d*),p=([1-9]\d*)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** Reads `$scrypt$ln=…,r=…,p=…$<salt>$<hash>`; null when malformed or out of bounds. */
export function parsePasswordHash(stored: string): ParsedPasswordHash | null {
  const m = PHC_PATTERN.exec(stored);
  if (m === null) return null;
  const params = { logN: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (!paramsInBounds(params)) return null;
  const salt = fromBase64(m[4]);
  const hash = fromBase64(m[5]);
  if (salt === null || hash === null) return null;
  if (salt.length < MIN_STORED_BYTES.salt || salt.length > MAX_STORED_BYTES) return null;
  if (hash.length < MIN_STORED_BYTES.hash || hash.length > MAX_STORED_BYTES) return null;
  return { params, salt, hash };
}

/** The stored string for a hash: `$scrypt$ln=17,r=8,p=1$<salt>$<hash>`, unpadded base64. */
export function encodePasswordHash(
  params: ScryptParams,
  salt: Uint8Array,
  hash: Uint8Array,
): string {
  return `$scrypt$ln=${params.logN},r=${params.r},p=${params.p}$${toBase64(salt)}$${
    toBase64(hash)
  }`;
}

function paramsInBounds({ logN, r, p }: ScryptParams): boolean {
  if (![logN, r, p].every(Number.isSafeInteger) || logN < 1 || r < 1 || p < 1) return false;
  return p <= MAX_SCRYPT_P && logN <= 30 && 128 * r * 2 ** logN <= MAX_SCRYPT_MEMORY_BYTES;
}

const encoder = new TextEncoder();

function tooLong(password: string): boolean {
  // Measured before normalizing too, so an enormous input is refused before NFKC walks it.
  return encoder.encode(password).length > MAX_PASSWORD_BYTES ||
    encoder.encode(password.normalize("NFKC")).length > MAX_PASSWORD_BYTES;
}

function passwordBytes(password: string): Uint8Array {
  return encoder.encode(password.normalize("NFKC"));
}

/** scrypt on the thread pool, allowed exactly the memory the parameters need. */
function scryptDerive(
  password: Uint8Array,
  salt: Uint8Array,
  keyLength: number,
  { logN, r, p }: ScryptParams,
): Promise<Uint8Array> {
  const n = 2 ** logN;
  // OpenSSL's check: 128·r·(N + p + 2) bytes for its V and B arrays; a little room above it.
  const maxmem = 128 * r * (n + p + 2) + 64 * 1024;
  return new Promise((resolve, reject) =>
    scrypt(
      password,
      salt,
      keyLength,
      { N: n, r, p, maxmem },
      (error, key) => error ? reject(error) : resolve(new Uint8Array(key)),
    )
  );
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/=+$/, "");
}

/** Unpadded standard base64 in canonical form (no stray bits), or null. */
function fromBase64(text: string): Uint8Array | null {
  if (text.length % 4 === 1) return null;
  let binary: string;
  try {
    binary = atob(text + "=".repeat((4 - text.length % 4) % 4));
  } catch {
    return null;
  }
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return toBase64(bytes) === text ? bytes : null;
}
