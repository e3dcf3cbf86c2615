/**
 * Names on this server, each its account's (store/accounts.ts), and the connections signed in to
 * each. It is the one owner of names: the hub asks with `take`, and this module grants the name
 * (sets the client's name and key and calls back) or closes the client with the reason it cannot.
 *
 * - The first hello with a free name makes its account and a session; the welcome carries the
 *   session's token. From then on the name is that account's: a disconnect frees nothing, and only
 *   the token (or verified credentials for that very name, a JWT `sub`) signs in as it. An
 *   account without a password is released after `--account-ttl` without use (`sweep`).
 * - An account may have many connections at once: tabs and devices. Presence, delivery and the
 *   join and leave lines are per account (the hub asks `clientsOf`); a hello with the `connection`
 *   id of one of the account's open sockets is that tab coming back, and replaces it (4010).
 * - Passwords. An account may have one (set with `set_password`, hub/account_commands.ts, or at
 *   creation when the hello carries `accountPassword`); `--registration password` requires one at
 *   creation. A hello with the account's name and its password signs in on a new device: the
 *   limiter (auth/sign_in_limit.ts, per name key and per address) is asked before any hash is
 *   spent, the hash (auth/password.ts, on the thread pool) is compared in constant time, and a
 *   match makes a session of its own for that device. A wrong password is 4001 WRONG_PASSWORD and
 *   counts a failure; a hello without proof for a taken name is 4009 `name taken`, as before.
 * - A token is rotated at each sign-in that presents the current one; the presented token keeps
 *   working until the new one is first used, so a lost welcome does not sign anyone out. A
 *   presented previous token (another tab raced, or a welcome was lost) is accepted as it is.
 * - With a cluster, the instance holding an account's connections claims its name cluster-wide
 *   while it has any (the append fence, redis/redis_store.ts, checks that claim). An account's
 *   connections are on one instance at a time for now: a hello on another is closed with 4009 and
 *   NAME_HELD_ELSEWHERE, which a client holding a token retries.
 *
 * Hellos and releases for one name key run one after another, so a claim and a release never
 * cross in Redis.
 */
import type { Client } from "../client.ts";
import type { Cluster } from "./cluster.ts";
import { CloseCode, nameFold, nameKey } from "../protocol/protocol.ts";
import {
  type Account,
  type AccountStore,
  DEFAULT_ACCOUNT_TTL_MS,
  MAX_RELEASED_PER_CALL,
  TOUCH_INTERVAL_MS,
} from "../store/accounts.ts";
import type { MaybePromise } from "../store/store.ts";
import { HasherBusyError, type PasswordHasher, passwordProblem } from "../auth/password.ts";
import { addressKey, type SignInLimiter, tooManyFailures } from "../auth/sign_in_limit.ts";

/** The close reason (with 4009) when another instance holds the name. */
export const NAME_HELD_ELSEWHERE = "name taken on another instance";
/** The close reason (with 4001) for a new name while registration is closed. */
export const REGISTRATION_CLOSED = "registration is closed: ask an admin for an account";
/** The close reason (with 4001) for an account an admin disabled. */
export const ACCOUNT_DISABLED = "this account is disabled";
/** The close reason (with 4001) of a connection whose session was ended. */
export const SIGNED_OUT = "signed out";
/** The close reason (with 4001) for a wrong account password. */
export const WRONG_PASSWORD = "wrong password";
/** The close reason (with 4001) for a new name without a password under `--registration password`. */
export const PASSWORD_REQUIRED = "choose a password: this server requires one for new accounts";
/** The close reason (with 1013) while too many password hashes wait. */
export const SIGN_IN_BUSY = "too many sign-ins at once, try again";
/** How often the sweep releases accounts unused for the TTL, at most, in ms. */
export const ACCOUNT_SWEEP_INTERVAL_MS = 60_000;
/** The device label of sessions made by a hello (the store requires one). */
export const HELLO_DEVICE = "web";

/**
 * Who may make an account: anyone with a free name (`open`), anyone who also chooses a password
 * (`password`), or nobody (`closed`: existing accounts only).
 */
export type Registration = "open" | "password" | "closed";

/** What the welcome tells a client that got its name. */
export interface Granted {
  /** The account's name, in its account's spelling. */
  name: string;
  /** The session token to present next time. */
  token: string;
  accountId: string;
  /** Whether the account has a password (the client offers to set or to change it). */
  hasPassword: boolean;
}

/** What a client offers to prove it may sign in as a name. */
export interface NameProof {
  /** A session token from an earlier welcome. */
  resume?: string;
  /**
   * True when the credentials themselves prove the identity (a verified token): proof for the name
   * they name in any case or width, never for a lookalike that shares its key.
   */
  verified: boolean;
  /** The client's id for this connection's lineage (one tab); its stale socket is replaced. */
  connection?: string;
  /** The account's password, to sign in without a token (a new device) or to make the account. */
  password?: string;
  /** The label of a session made now. @default HELLO_DEVICE */
  device?: string;
}

/** Options for {@linkcode Sessions}. */
export interface SessionsOptions {
  accounts: AccountStore;
  /** Hashes and verifies account passwords. */
  hasher: PasswordHasher;
  /** Failed password sign-ins per account and per address (shared with the account commands). */
  signIns: SignInLimiter;
  /** Other instances whose names must not collide with ours. @default none */
  cluster?: Cluster | null;
  /** @default "open" */
  registration?: Registration;
  /** How long an account without a password outlives its last use, in ms. @default 30 days */
  accountTtlMs?: number;
  /** @default Date.now */
  now?: () => number;
  /** The store or the cluster could not be asked; the client was told to try again. */
  failed?: (error: unknown) => void;
}

/** One account's connections here. */
interface Holder {
  account: Account;
  /** Each connection, with its session id and its `connection` id. */
  clients: Map<Client, { session: string; connection?: string }>;
}

/** Grants names by account, keeps each account's connections, and releases unused accounts. */
export class Sessions {
  #held = new Map<string, Holder>();
  /** Per name key, the hello or release running now; the next waits for it. */
  #turns = new Map<string, Promise<void>>();
  /** When each session's last-seen time was last written, in ms. */
  #touched = new Map<string, number>();
  #accounts: AccountStore;
  #hasher: PasswordHasher;
  #signIns: SignInLimiter;
  #cluster: Cluster | null;
  #registration: Registration;
  #ttlMs: number;
  #now: () => number;
  #failed: (error: unknown) => void;
  #lastSweepAt = -Infinity;
  #sweeping = false;

  constructor(options: SessionsOptions) {
    this.#accounts = options.accounts;
    this.#hasher = options.hasher;
    this.#signIns = options.signIns;
    this.#cluster = options.cluster ?? null;
    this.#registration = options.registration ?? "open";
    this.#ttlMs = options.accountTtlMs ?? DEFAULT_ACCOUNT_TTL_MS;
    this.#now = options.now ?? Date.now;
    this.#failed = options.failed ?? (() => {});
  }

  /**
   * Signs `client` in as `name` and calls `granted` (at once when the store answers at once and
   * there is no cluster to ask), or closes the client: `name_taken` without the proof for an
   * account's name, `unauthorized` for a new name while registration is closed or for a disabled
   * account, `unavailable` when the store or the cluster cannot be asked.
   */
  take(client: Client, name: string, proof: NameProof, granted: (g: Granted) => void): void {
    const key = nameKey(name);
    const unavailable = (e: unknown) => {
      this.#failed(e);
      if (!client.closed) {
        client.close(CloseCode.tryAgain, "accounts unavailable, try again", "unavailable");
      }
    };
    void this.#turn(key, () => this.#take(client, name, key, proof, granted), unavailable);
  }

  /**
   * Runs `fn` after whatever runs for `key` now (at once when nothing does), handing what it
   * throws or rejects with to `failed`.
   */
  #turn(
    key: string,
    fn: () => MaybePromise<void>,
    failed: (e: unknown) => void,
  ): MaybePromise<void> {
    const before = this.#turns.get(key);
    let result: MaybePromise<void>;
    if (before === undefined) {
      try {
        result = fn();
      } catch (e) {
        return failed(e);
      }
      if (!(result instanceof Promise)) return;
      result = result.catch(failed);
    } else result = before.then(fn).catch(failed);
    const mine = result;
    this.#turns.set(key, mine);
    return mine.finally(() => {
      if (this.#turns.get(key) === mine) this.#turns.delete(key);
    });
  }

  #take(
    client: Client,
    name: string,
    key: string,
    proof: NameProof,
    granted: (g: Granted) => void,
  ): MaybePromise<void> {
    if (client.closed) return;
    const store = this.#accounts;
    const resume = proof.resume;
    return step(resume === undefined ? null : store.findSession(resume), (found) => {
      if (found !== null && found.account.key === key) {
        // The current token is spent for a new one; a previous one is kept as it was presented.
        return step(
          found.previous ? null : store.rotateSession(resume!),
          (rotated) =>
            this.#signedIn(
              client,
              key,
              {
                account: found.account,
                session: found.session.id,
                token: rotated?.token ?? resume!,
              },
              proof,
              granted,
            ),
        );
      }
      return step(store.accountByName(name), (account) => {
        // Said whatever the proof: the token of a disabled account opens no session any more.
        if (account?.disabled) return this.#refuseDisabled(client);
        if (account === null) return this.#register(client, name, key, proof, granted);
        // A verified token proves the identity as well as a session token does, but only for the
        // name it names: a token for a lookalike of an account's name (Cyrillic "аdmin" for
        // "admin") is someone else's, who shares the key and must not sign in as it.
        if (proof.verified && nameFold(name) === nameFold(account.name)) {
          return this.#newSession(client, key, account, proof, granted);
        }
        if (proof.password !== undefined && account.passwordHash !== null) {
          return this.#checkPassword(client, key, account, proof, granted);
        }
        return client.close(CloseCode.nameTaken, "name taken", "name_taken");
      });
    });
  }

  /** A hello for a free name: makes its account, with the password the hello chose if any. */
  #register(
    client: Client,
    name: string,
    key: string,
    proof: NameProof,
    granted: (g: Granted) => void,
  ): MaybePromise<void> {
    if (this.#registration === "closed") {
      // Probing for names costs a password guess, as a wrong password for a real one would.
      if (proof.password !== undefined) this.#signIns.failed(key, addressKey(client.address));
      return client.close(CloseCode.unauthorized, REGISTRATION_CLOSED, "unauthorized");
    }
    const password = proof.password;
    if (password === undefined) {
      if (this.#registration === "password") {
        return client.close(CloseCode.unauthorized, PASSWORD_REQUIRED, "unauthorized");
      }
      return step(
        this.#create(name, null),
        (owner) => this.#created(client, key, owner, proof, granted),
      );
    }
    const problem = passwordProblem(password);
    if (problem !== null) {
      return client.close(
        CloseCode.badHandshake,
        `Cannot make the account: ${problem}`,
        "bad_handshake",
      );
    }
    return this.#hashing(client, this.#hasher.hash(password), (hash) => {
      if (client.closed) return;
      return step(
        this.#create(name, hash),
        (owner) => this.#created(client, key, owner, proof, granted),
      );
    });
  }

  #created(
    client: Client,
    key: string,
    owner: Account | null,
    proof: NameProof,
    granted: (g: Granted) => void,
  ): MaybePromise<void> {
    if (owner === null) return client.close(CloseCode.nameTaken, "name taken", "name_taken");
    return this.#newSession(client, key, owner, proof, granted);
  }

  /** The hello offers the account's password: limited, then compared, then a session of its own. */
  #checkPassword(
    client: Client,
    key: string,
    account: Account,
    proof: NameProof,
    granted: (g: Granted) => void,
  ): MaybePromise<void> {
    const address = addressKey(client.address);
    const verdict = this.#signIns.check(key, address);
    if (!verdict.ok) {
      const reason = tooManyFailures(verdict.retryAfterMs);
      return client.close(CloseCode.unauthorized, reason, "unauthorized");
    }
    const password = proof.password!;
    return this.#hashing(client, this.#hasher.verify(password, account.passwordHash!), (result) => {
      if (!result.ok) {
        this.#signIns.failed(key, address);
        return client.close(CloseCode.unauthorized, WRONG_PASSWORD, "unauthorized");
      }
      if (result.needsRehash) this.#rehash(account.id, password);
      if (client.closed) return;
      return this.#newSession(client, key, account, proof, granted);
    });
  }

  /** Runs `then` on a hash's result; a busy hasher asks the client to try again (never "wrong"). */
  #hashing<T>(
    client: Client,
    work: Promise<T>,
    then: (t: T) => MaybePromise<void>,
  ): Promise<void> {
    return work.then(then, (e) => {
      if (!(e instanceof HasherBusyError)) throw e;
      if (!client.closed) client.close(CloseCode.tryAgain, SIGN_IN_BUSY, "unavailable");
    });
  }

  /** Stores a hash at today's parameters for a password that just matched an older one. */
  #rehash(accountId: string, password: string): void {
    this.#hasher.hash(password)
      .then((hash) => this.#accounts.setPassword(accountId, hash))
      .catch((e) => this.#failed(e));
  }

  /** A session of its own for this device, then the sign-in. */
  #newSession(
    client: Client,
    key: string,
    owner: Account,
    proof: NameProof,
    granted: (g: Granted) => void,
  ): MaybePromise<void> {
    if (owner.disabled || client.closed) return this.#refuseDisabled(client);
    const device = proof.device ?? HELLO_DEVICE;
    return step(this.#accounts.createSession(owner.id, device, this.#now()), (made) => {
      if (!made.ok) return this.#refuseDisabled(client);
      if (made.evicted !== null) this.endSessions([made.evicted]);
      const signedIn = { account: owner, session: made.session.id, token: made.token };
      return this.#signedIn(client, key, signedIn, proof, granted);
    });
  }

  #refuseDisabled(client: Client): void {
    if (!client.closed) client.close(CloseCode.unauthorized, ACCOUNT_DISABLED, "unauthorized");
  }

  /** The client proved its account: claims the name cluster-wide if needed, and attaches it. */
  #signedIn(
    client: Client,
    key: string,
    signedIn: { account: Account; session: string; token: string },
    proof: NameProof,
    granted: (g: Granted) => void,
  ): MaybePromise<void> {
    if (client.closed) return;
    const attach = () => {
      this.#attach(client, key, signedIn, proof.connection);
      this.#touch(signedIn.session, true);
      granted({
        name: signedIn.account.name,
        token: signedIn.token,
        accountId: signedIn.account.id,
        hasPassword: signedIn.account.passwordHash !== null,
      });
    };
    const cluster = this.#cluster;
    if (this.#held.has(key) || cluster === null) return attach();
    return (async () => {
      if (!await cluster.claimName(key, signedIn.account.name)) {
        // Said apart from a local refusal: the account's connections are on another instance,
        // perhaps its own old one that has not noticed they are gone, so a client retries.
        return client.close(CloseCode.nameTaken, NAME_HELD_ELSEWHERE, "name_taken");
      }
      // Nobody here holds the name now, so the claim just made goes back.
      if (client.closed) return void (this.#held.has(key) || await cluster.releaseName(key));
      attach();
    })();
  }

  /** A new account for `name`, or null when someone else made it first. */
  #create(name: string, passwordHash: string | null): MaybePromise<Account | null> {
    return step(
      this.#accounts.createAccount({ name, passwordHash, now: this.#now() }),
      (made) => made.ok ? made.account : null,
    );
  }

  #attach(
    client: Client,
    key: string,
    signedIn: { account: Account; session: string },
    connection: string | undefined,
  ): void {
    let holder = this.#held.get(key);
    if (holder === undefined) {
      this.#held.set(key, holder = { account: signedIn.account, clients: new Map() });
    }
    holder.account = signedIn.account;
    if (connection !== undefined) {
      // The same tab's earlier socket, maybe half-open: replaced. It is detached first, so its
      // disconnect does not count as the account's connection leaving.
      for (const [other, c] of holder.clients) {
        if (c.connection === connection && c.session === signedIn.session) {
          holder.clients.delete(other);
          other.close(CloseCode.replaced, "replaced", "replaced");
        }
      }
    }
    holder.clients.set(client, { session: signedIn.session, connection });
    client.name = signedIn.account.name;
    client.key = key;
  }

  /** Names with a connection here now. */
  get size(): number {
    return this.#held.size;
  }

  /** The connections of the account with this name key here now (none: an empty list). */
  clientsOf(key: string): Client[] {
    const holder = this.#held.get(key);
    return holder === undefined ? [] : [...holder.clients.keys()];
  }

  /** True while `client` is one of its name's connections (a replaced one no longer is). */
  holds(client: Client): boolean {
    return client.name !== null && this.#held.get(client.key)?.clients.has(client) === true;
  }

  /** The account id `client` signed in to, or undefined before its welcome. */
  accountOf(client: Client): string | undefined {
    return client.name === null ? undefined : this.#held.get(client.key)?.account.id;
  }

  /**
   * The client is gone. When it was its account's last connection here, returns the cluster-wide
   * release to wait for (with a cluster). The release waits for `after` (what the client's last
   * commands still tell the other instances), so no line about this user goes out once its name
   * may be held elsewhere. Nothing when the client held no name (a replaced one's is its
   * successor's) or the account has other connections.
   */
  release(client: Client, after?: Promise<void>): Promise<void> | undefined {
    if (client.name === null) return;
    const key = client.key;
    const holder = this.#held.get(key);
    const mine = holder?.clients.get(client);
    if (holder === undefined || mine === undefined) return;
    holder.clients.delete(client);
    this.#touch(mine.session, true);
    if (holder.clients.size > 0) return;
    this.#held.delete(key);
    const cluster = this.#cluster;
    if (cluster === null) return;
    // A hello that came meanwhile took the name here again: the claim is its.
    const free = () => this.#held.has(key) ? undefined : cluster.releaseName(key);
    const release = this.#turn(
      key,
      () => after === undefined ? free() : after.then(free, free),
      this.#failed,
    );
    return release instanceof Promise ? release : Promise.resolve();
  }

  /**
   * Another instance took these names while this one was cut off long enough to be presumed
   * dead: their connections here are closed with `name_taken`.
   */
  lost(keys: string[]): void {
    for (const key of keys) {
      const holder = this.#held.get(key);
      if (holder === undefined) continue;
      this.#held.delete(key);
      for (const client of holder.clients.keys()) {
        client.close(CloseCode.nameTaken, "name taken", "name_taken");
      }
    }
  }

  /** Closes the connections here of sessions the store revoked, with 4001 SIGNED_OUT. */
  endSessions(sessionIds: Iterable<string>): void {
    const ended = new Set(sessionIds);
    if (ended.size === 0) return;
    for (const holder of this.#held.values()) {
      for (const [client, c] of holder.clients) {
        if (ended.has(c.session)) client.close(CloseCode.unauthorized, SIGNED_OUT, "unauthorized");
      }
    }
  }

  /** The account and session `client` signed in with, or undefined before its welcome. */
  sessionOf(client: Client): { accountId: string; session: string } | undefined {
    if (client.name === null) return;
    const holder = this.#held.get(client.key);
    const mine = holder?.clients.get(client);
    return mine === undefined
      ? undefined
      : { accountId: holder!.account.id, session: mine.session };
  }

  /** Writes a session's last-seen time when due (or now, when `force`); failures are logged. */
  #touch(session: string, force = false): void {
    const now = this.#now();
    const last = this.#touched.get(session);
    if (!force && last !== undefined && now - last < TOUCH_INTERVAL_MS) return;
    this.#touched.set(session, now);
    try {
      const done = this.#accounts.touchSession(session, now);
      if (done instanceof Promise) done.catch((e) => this.#failed(e));
    } catch (e) {
      this.#failed(e);
    }
  }

  /**
   * Keeps connected sessions' last-seen times fresh (so an account in use is never released), and
   * at most every ACCOUNT_SWEEP_INTERVAL_MS releases accounts unused for the TTL.
   */
  sweep(): void {
    const live = new Set<string>();
    for (const holder of this.#held.values()) {
      for (const c of holder.clients.values()) {
        live.add(c.session);
        this.#touch(c.session);
      }
    }
    for (const session of this.#touched.keys()) {
      if (!live.has(session)) this.#touched.delete(session);
    }
    const now = this.#now();
    if (this.#sweeping || now - this.#lastSweepAt < ACCOUNT_SWEEP_INTERVAL_MS) return;
    this.#lastSweepAt = now;
    this.#sweeping = true;
    void (async () => {
      try {
        // Repeats while a call releases a full batch; each call is short.
        while (
          (await this.#accounts.releaseInactive(now, this.#ttlMs)).length >= MAX_RELEASED_PER_CALL
        ) {
          if (this.#now() - now > ACCOUNT_SWEEP_INTERVAL_MS) break;
        }
      } catch (e) {
        this.#failed(e);
      } finally {
        this.#sweeping = false;
      }
    })();
  }
}

/** `f(v)`, at once when `v` is a value, after it when a promise: keeps a synchronous store sync. */
function step<T, R>(v: MaybePromise<T>, f: (t: T) => MaybePromise<R>): MaybePromise<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}
