/**
 * The hello: a new connection's credentials are checked (synchronously or not), its name is taken
 * through `Sessions`, and the welcome lets its commands in. A refused hello is closed with the
 * reason it failed (never the secret), so a client knows what to ask for.
 *
 * Guessing the shared password (`--password`) is bounded per client address: after
 * MAX_FAILURES_PER_ACCOUNT wrong or missing passwords within SIGN_IN_WINDOW_MS (auth/sign_in_limit.ts),
 * the address's hellos are closed unchecked, with 4001 and how long to wait, until its oldest
 * failure ages out. The shared password is one secret for everyone, so it is counted by address
 * only: one person mistyping it never locks out the others.
 */
import type { Client } from "../client.ts";
import { CloseCode, type Hello, welcomeLine } from "../protocol/protocol.ts";
import { type Authenticator, type AuthResult, PASSWORD_REFUSED } from "../auth/auth.ts";
import { addressKey, SignInLimiter, tooManyFailures } from "../auth/sign_in_limit.ts";
import type { HubObservers } from "./options.ts";
import type { Replies } from "./replies.ts";
import type { Granted, Sessions } from "./sessions.ts";
import type { AccountStore, JoinedRoom } from "../store/accounts.ts";

/** What {@linkcode Greeting} works with; all of it owned by the hub. */
export interface GreetingParts {
  /** @default every valid name is let in */
  auth?: Authenticator;
  sessions: Sessions;
  accounts: AccountStore;
  replies: Replies;
  observers: HubObservers;
  /** Extra limits reported in the welcome. */
  welcomeLimits: Record<string, unknown>;
  version: string;
  /** True once shutdown began: new connections are closed with 1001. */
  draining: () => boolean;
  /** @default Date.now */
  now?: () => number;
}

/** Answers hellos. */
export class Greeting {
  #p: GreetingParts;
  #signIns: SignInLimiter;

  constructor(parts: GreetingParts) {
    this.#p = parts;
    this.#signIns = new SignInLimiter({ now: parts.now });
  }

  /** Forgets addresses whose failed sign-ins have all aged out. */
  sweep(): void {
    this.#signIns.sweep();
  }

  hello(client: Client, hello: Hello): void {
    if (this.#p.draining()) {
      return client.close(CloseCode.shutdown, "server shutting down", "shutdown");
    }
    const address = addressKey(client.address);
    const verdict = this.#signIns.check(address, address);
    if (!verdict.ok) {
      const reason = tooManyFailures(verdict.retryAfterMs);
      this.#p.observers.event?.("warn", "unauthorized", { address: client.address, reason });
      return client.close(CloseCode.unauthorized, reason, "unauthorized");
    }
    const checked: AuthResult | Promise<AuthResult> = this.#p.auth?.(hello) ??
      (hello.name === undefined
        ? { ok: false, reason: "hello needs a name" }
        : { ok: true, name: hello.name, verified: false });
    if (checked instanceof Promise) {
      checked.then((result) => this.#admit(client, hello, result), () => {
        this.#admit(client, hello, { ok: false, reason: "credentials could not be checked" });
      });
    } else this.#admit(client, hello, checked);
  }

  /** Registers the client under its name once its credentials are known. */
  #admit(client: Client, hello: Hello, auth: AuthResult): void {
    if (client.closed) return;
    if (this.#p.draining()) {
      return client.close(CloseCode.shutdown, "server shutting down", "shutdown");
    }
    if (!auth.ok) {
      if (auth.reason === PASSWORD_REFUSED) {
        const address = addressKey(client.address);
        this.#signIns.failed(address, address);
      }
      this.#p.observers.event?.("warn", "unauthorized", {
        address: client.address,
        reason: auth.reason,
      });
      return client.close(CloseCode.unauthorized, auth.reason, "unauthorized");
    }
    this.#p.sessions.take(
      client,
      auth.name,
      {
        resume: hello.resume,
        verified: auth.verified,
        connection: hello.connection,
        password: hello.accountPassword,
        device: hello.device,
      },
      (granted) => this.#rooms(client, granted, auth.expiresAt),
    );
  }

  /** Reads the account's rooms for the welcome; without them (the store failed) it goes anyway. */
  #rooms(client: Client, granted: Granted, expiresAt?: number): void {
    const welcome = (rooms: JoinedRoom[]) => {
      if (!client.closed) this.#welcome(client, granted, rooms, expiresAt);
    };
    const failed = (e: unknown) => {
      this.#p.replies.failed(e);
      welcome([]);
    };
    try {
      const rooms = this.#p.accounts.listRooms(granted.accountId);
      if (rooms instanceof Promise) rooms.then(welcome, failed);
      else welcome(rooms);
    } catch (e) {
      failed(e);
    }
  }

  /** Sends the welcome to a client that has its name, and lets its commands in. */
  #welcome(client: Client, session: Granted, joined: JoinedRoom[], expiresAt?: number): void {
    const { welcomeLimits, version, replies, observers } = this.#p;
    const { name, token: resume, hasPassword } = session;
    const rooms = joined.map((r) => r.room);
    const read: Record<string, number> = {};
    for (const r of joined) if (r.lastRead > 0) read[r.room] = r.lastRead;
    replies.send(
      client,
      welcomeLine({ name, resume, limits: welcomeLimits, version, rooms, hasPassword, read }),
    );
    if (expiresAt !== undefined) client.expireAt(expiresAt);
    observers.event?.("info", "hello", { name: session.name, address: client.address });
    client.ready();
  }
}
