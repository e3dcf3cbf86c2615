/**
 * The sign-in limiter: failed password attempts per account and per address in a sliding window,
 * and how long a refused client must wait.
 *
 * Why these limits: 10 failures per account per 15 minutes bounds an online guesser to 960
 * guesses a day against one account, wherever it guesses from, far inside NIST SP 800-63B's "no
 * more than 100 consecutive failed attempts" while never locking an owner out for more than 15
 * minutes (a lockout that needs an admin would hand anyone a way to lock others out). 30 per
 * address lets an office behind one NAT mistype freely but stops one machine spraying a password
 * over many accounts at more than 2 a minute. Only failures count, and a success forgives none:
 * the bound is on guesses, so an attacker cannot reset it by signing in to an account of its own.
 *
 * Sliding log, not a fixed window: each key keeps the times of its last `limit` failures (older
 * ones cannot matter), so the bound is exact and the retry-after is exactly when the oldest of
 * them ages out. Memory: at most `maxTracked` keys per window ({@linkcode MAX_TRACKED_KEYS}, about
 * 0.5 KiB each at 30 times); past that the key touched longest ago is forgotten. That lets an
 * attacker with more than 20,000 addresses forget its own counts, not anyone else's sooner than
 * they would age out anyway; the per-account window is what holds against such a spread.
 *
 * Pure logic with an injected clock; nothing is logged (the caller logs the name and the event).
 *
 * Wiring: the hub makes one `SignInLimiter` for account passwords, used by hub/sessions.ts's
 * password sign-in (`check(nameKey(name), addressKey(address))` before any hash; `failed` on a
 * wrong password, and on an unknown name while registration is closed, so probing names costs a
 * guess) and by `set_password`'s current-password check (hub/account_commands.ts); hub/greeting.ts
 * keeps another for the shared `--password`, by address only. The hub's sweep calls `sweep()`. The
 * address is the one http/server.ts resolves (honouring `--trust-proxy`), passed through
 * {@linkcode addressKey}, which counts an IPv6 caller by its /64: one host commonly holds a whole
 * /64 and could otherwise take a fresh address per guess. With `--redis` the windows are per
 * instance, so N instances allow N times the failures; a shared window in Redis is a later step.
 */

/** How long a failed sign-in counts, in ms. */
export const SIGN_IN_WINDOW_MS = 15 * 60_000;
/** Failed sign-ins one account may take within the window, from anywhere. */
export const MAX_FAILURES_PER_ACCOUNT = 10;
/** Failed sign-ins one address may make within the window, at any accounts. */
export const MAX_FAILURES_PER_ADDRESS = 30;
/** Most keys one window tracks; past this the key touched longest ago is forgotten. */
export const MAX_TRACKED_KEYS = 20_000;

/** Options for {@linkcode FailureWindow}. */
export interface FailureWindowOptions {
  /** Failures allowed within the window. */
  limit: number;
  /** How long a failure counts, in ms. */
  windowMs: number;
  /** @default {@linkcode MAX_TRACKED_KEYS} */
  maxTracked?: number;
  /** @default Date.now */
  now?: () => number;
}

/** Counts failures per key in a sliding window; keeps only the last `limit` times of each key. */
export class FailureWindow {
  #limit: number;
  #windowMs: number;
  #maxTracked: number;
  #now: () => number;
  /** Failure times per key, oldest first; Map order is least recently touched first. */
  #times = new Map<string, number[]>();

  constructor(options: FailureWindowOptions) {
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#maxTracked = options.maxTracked ?? MAX_TRACKED_KEYS;
    this.#now = options.now ?? Date.now;
  }

  /** Keys tracked now. */
  get size(): number {
    return this.#times.size;
  }

  /** Records one failure of `key`. */
  record(key: string): void {
    const now = this.#now();
    const times = this.#live(key, now) ?? [];
    times.push(now);
    if (times.length > this.#limit) times.splice(0, times.length - this.#limit);
    this.#times.delete(key); // re-inserted last: most recently touched
    this.#times.set(key, times);
    while (this.#times.size > this.#maxTracked) {
      this.#times.delete(this.#times.keys().next().value!);
    }
  }

  /** Failures of `key` still in the window. */
  timesOf(key: string): number {
    return this.#live(key, this.#now())?.length ?? 0;
  }

  /** 0 when `key` may try now; otherwise how long until its oldest counted failure ages out. */
  retryAfterMs(key: string): number {
    const now = this.#now();
    const times = this.#live(key, now);
    if (times === undefined || times.length < this.#limit) return 0;
    // Bounded by the window even if the clock stepped back since the failure was recorded.
    return Math.min(this.#windowMs, times[0] + this.#windowMs - now);
  }

  /** Forgets every key whose failures have all aged out. */
  sweep(): void {
    const now = this.#now();
    for (const key of [...this.#times.keys()]) this.#live(key, now);
  }

  /** `key`'s failures within the window, dropping aged ones (and the key when none is left). */
  #live(key: string, now: number): number[] | undefined {
    const times = this.#times.get(key);
    if (times === undefined) return undefined;
    let aged = 0;
    while (aged < times.length && times[aged] + this.#windowMs <= now) aged++;
    if (aged === times.length) {
      this.#times.delete(key);
      return undefined;
    }
    if (aged > 0) times.splice(0, aged);
    return times;
  }
}

/** Whether a sign-in may be tried now, or how long to wait and which limit said no. */
export type SignInVerdict =
  | { ok: true }
  | { ok: false; retryAfterMs: number; scope: "account" | "address" };

/** Options for {@linkcode SignInLimiter}. */
export interface SignInLimiterOptions {
  /** @default {@linkcode MAX_FAILURES_PER_ACCOUNT} */
  perAccount?: number;
  /** @default {@linkcode MAX_FAILURES_PER_ADDRESS} */
  perAddress?: number;
  /** @default {@linkcode SIGN_IN_WINDOW_MS} */
  windowMs?: number;
  /** @default {@linkcode MAX_TRACKED_KEYS} */
  maxTracked?: number;
  /** @default Date.now */
  now?: () => number;
}

/** Limits failed password sign-ins per account (its name key) and per client address. */
export class SignInLimiter {
  #accounts: FailureWindow;
  #addresses: FailureWindow;

  constructor(options: SignInLimiterOptions = {}) {
    const common = {
      windowMs: options.windowMs ?? SIGN_IN_WINDOW_MS,
      maxTracked: options.maxTracked,
      now: options.now,
    };
    this.#accounts = new FailureWindow({
      ...common,
      limit: options.perAccount ?? MAX_FAILURES_PER_ACCOUNT,
    });
    this.#addresses = new FailureWindow({
      ...common,
      limit: options.perAddress ?? MAX_FAILURES_PER_ADDRESS,
    });
  }

  /** Whether `address` may try a password for `account` now; ask before spending a hash. */
  check(account: string, address: string): SignInVerdict {
    const accountWait = this.#accounts.retryAfterMs(account);
    const addressWait = this.#addresses.retryAfterMs(address);
    if (accountWait === 0 && addressWait === 0) return { ok: true };
    return accountWait >= addressWait
      ? { ok: false, retryAfterMs: accountWait, scope: "account" }
      : { ok: false, retryAfterMs: addressWait, scope: "address" };
  }

  /** A password for `account` from `address` was wrong (or the account does not exist). */
  failed(account: string, address: string): void {
    this.#accounts.record(account);
    this.#addresses.record(address);
  }

  /** A password was right. Forgives nothing (see the module header); here for the call site. */
  succeeded(_account: string, _address: string): void {}

  /** Forgets keys whose failures have all aged out; call every few minutes. */
  sweep(): void {
    this.#accounts.sweep();
    this.#addresses.sweep();
  }
}

/** The close reason for a sign-in refused by the limiter: how long to wait, in whole seconds. */
export function tooManyFailures(retryAfterMs: number): string {
  return `too many failed sign-ins, try again in ${Math.ceil(retryAfterMs / 1000)} s`;
}

/**
 * The key an address is counted under: an IPv4 address as it is (an IPv4-mapped IPv6 address as
 * its IPv4), an IPv6 address as its /64 (`2001:db8:1:2::/64`); anything else unchanged.
 */
export function addressKey(address: string): string {
  let a = address.trim();
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  const zone = a.indexOf("%");
  if (zone >= 0) a = a.slice(0, zone);
  if (!a.includes(":")) return address;
  const groups = ipv6Groups(a.toLowerCase());
  if (groups === null) return address;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join(".");
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (with `::` and a dotted IPv4 tail), or null. */
function ipv6Groups(a: string): number[] | null {
  const halves = a.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && piece.includes(".")) {
        const octets = piece.split(".");
        if (octets.length !== 4 || !octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255)) {
          return null;
        }
        const [b0, b1, b2, b3] = octets.map(Number);
        out.push((b0 << 8) | b1, (b2 << 8) | b3);
      } else if (/^[0-9a-f]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else return null;
    }
    return out;
  };
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return null;
  return [...head, ...new Array(missing).fill(0), ...tail];
}
