/**
 * Names by account: sign-in with a session token, many connections per account, no reservation
 * (a name stays its account's), registration and the account TTL; specified with fake sockets, a
 * real in-memory account store, an injected clock and a fake cluster.
 */
import assert from "node:assert/strict";
import { Client, type ClientHandler } from "../client.ts";
import { fakeClientOptions, FakeSocket } from "./fakes.ts";
import type { Cluster } from "../hub/cluster.ts";
import { CloseCode } from "../protocol/protocol.ts";
import {
  ACCOUNT_DISABLED,
  ACCOUNT_SWEEP_INTERVAL_MS,
  type Granted,
  NAME_HELD_ELSEWHERE,
  type Registration,
  REGISTRATION_CLOSED,
  Sessions,
} from "../hub/sessions.ts";
import { SqliteAccountStore } from "../store/sqlite_accounts.ts";
import { DatabaseSync } from "node:sqlite";
import { createHash } from "node:crypto";
import { type Derive, PasswordHasher } from "../auth/password.ts";
import { MAX_FAILURES_PER_ACCOUNT, SignInLimiter } from "../auth/sign_in_limit.ts";
import { PASSWORD_REQUIRED, SIGN_IN_BUSY, SIGNED_OUT, WRONG_PASSWORD } from "../hub/sessions.ts";

/** The parts of a cluster that names use; the rest is never called here. */
class NameCluster implements Cluster {
  healthy = true;
  listen() {}
  held = new Set<string>();
  released: string[] = [];
  /** When set, the next claim waits for this promise's answer. */
  gate: Promise<boolean> | null = null;
  fail = false;
  async claimName(key: string): Promise<boolean> {
    if (this.fail) throw new Error("redis down");
    if (this.gate !== null) return await this.gate;
    if (this.held.has(key)) return false;
    this.held.add(key);
    return true;
  }
  releaseName(key: string): Promise<void> {
    this.held.delete(key);
    this.released.push(key);
    return Promise.resolve();
  }
  ownerOf(): Promise<string | null> {
    throw new Error("not used");
  }
  enterRoom(): Promise<void> {
    throw new Error("not used");
  }
  exitRoom(): Promise<void> {
    return Promise.resolve();
  }
  members(): Promise<string[]> {
    throw new Error("not used");
  }
  rooms(): Promise<{ room: string; members: number }[]> {
    throw new Error("not used");
  }
  publishRoom(): void {}
  publishPresence(): void {}
  publishDirect(): Promise<boolean> {
    return Promise.resolve(true);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Lets pending promise callbacks run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

const DAY_MS = 86_400_000;

/**
 * A stand-in for scrypt (the real one is auth/password_test.ts's): SHA-256 of password and salt,
 * counting calls, so a test can see whether a hash was spent. `hold` makes derives wait.
 */
function fakeDerive() {
  const state = { calls: 0, hold: null as Promise<void> | null };
  const derive: Derive = async (password, salt, keyLength) => {
    state.calls++;
    if (state.hold !== null) await state.hold;
    const digest = createHash("sha256").update(password).update(salt).digest();
    return new Uint8Array(digest.subarray(0, keyLength));
  };
  return { state, derive };
}

function rig(
  cluster: Cluster | null = null,
  options: {
    registration?: Registration;
    accountTtlMs?: number;
    accounts?: SqliteAccountStore;
    hasher?: PasswordHasher;
  } = {},
) {
  const clock = { now: 1_000_000 };
  const failures: unknown[] = [];
  const accounts = options.accounts ?? new SqliteAccountStore(new DatabaseSync(":memory:"));
  const hashing = fakeDerive();
  const sessions = new Sessions({
    accounts,
    hasher: options.hasher ?? new PasswordHasher({ derive: hashing.derive }),
    signIns: new SignInLimiter({ now: () => clock.now }),
    cluster,
    now: () => clock.now,
    registration: options.registration,
    accountTtlMs: options.accountTtlMs,
    failed: (e) => failures.push(e),
  });
  // Like the hub: a client that goes away releases its name.
  const handler: ClientHandler = {
    hello() {},
    command() {},
    rejected() {},
    slow() {},
    closed: (client) => void sessions.release(client),
  };
  const clients: Client[] = [];
  return {
    sessions,
    accounts,
    clock,
    failures,
    hashing: hashing.state,
    connect(): { client: Client; socket: FakeSocket } {
      const socket = new FakeSocket();
      const client = new Client(socket, handler, fakeClientOptions());
      clients.push(client);
      return { client, socket };
    },
    /** Asks for `name`; returns what has been granted so far, or null. */
    take(
      client: Client,
      name: string,
      proof: {
        resume?: string;
        verified?: boolean;
        connection?: string;
        password?: string;
        device?: string;
      } = {},
    ): () => Granted | null {
      let granted: Granted | null = null;
      sessions.take(client, name, { verified: false, ...proof }, (g) => granted = g);
      return () => granted;
    },
    done() {
      for (const c of clients) c.close(1000, "done", "client");
    },
  };
}

Deno.test("Sessions makes an account for a free name, with a session token, and names the client", () => {
  const r = rig();
  const { client } = r.connect();
  const got = r.take(client, "Ada");
  assert.equal(got()?.name, "Ada");
  assert.match(got()!.token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(client.name, "Ada");
  assert.deepEqual(r.sessions.clientsOf(client.key), [client]);
  assert.equal(r.accounts.accountByName("ada")?.id, got()!.accountId);
  r.done();
});

Deno.test("Sessions refuses an account's name without proof, whatever its case, and long after its holder left", () => {
  const r = rig();
  const first = r.connect();
  r.take(first.client, "Ada");
  const second = r.connect();
  assert.equal(r.take(second.client, "ADA")(), null);
  assert.equal(second.socket.closeCode, CloseCode.nameTaken);
  assert.equal(second.socket.closeReason, "name taken");
  assert.equal(first.socket.closeCode, undefined);
  first.client.close(1000, "bye", "client");
  assert.deepEqual(r.sessions.clientsOf("ada"), []);
  // No reservation that ends: a day later the name is still Ada's.
  r.clock.now += DAY_MS;
  r.sessions.sweep();
  const stranger = r.connect();
  assert.equal(r.take(stranger.client, "Ada")(), null);
  assert.equal(stranger.socket.closeCode, CloseCode.nameTaken);
  r.done();
});

Deno.test("Sessions lets one account sign in on many connections at once, each live, the token rotating", () => {
  const r = rig();
  const laptop = r.connect();
  const token = r.take(laptop.client, "Ada")()!.token;
  const tab = r.connect();
  const rotated = r.take(tab.client, "Ada", { resume: token })()?.token;
  assert.ok(rotated !== undefined && rotated !== token, "signing in with the token rotates it");
  assert.equal(laptop.socket.closeCode, undefined, "the first connection stays open");
  assert.deepEqual(r.sessions.clientsOf("ada"), [laptop.client, tab.client]);
  // The presented token works until the new one is used (a lost welcome signs nobody out) ...
  const racer = r.connect();
  assert.equal(r.take(racer.client, "Ada", { resume: token })()?.token, token);
  // ... and no longer once it has been.
  const next = r.connect();
  assert.notEqual(r.take(next.client, "Ada", { resume: rotated })(), null);
  const leaked = r.connect();
  assert.equal(r.take(leaked.client, "Ada", { resume: token })(), null);
  assert.equal(leaked.socket.closeCode, CloseCode.nameTaken);
  assert.equal(r.sessions.clientsOf("ada").length, 4);
  // Leaving one connection leaves the others signed in.
  tab.client.close(1000, "bye", "client");
  assert.deepEqual(r.sessions.clientsOf("ada"), [laptop.client, racer.client, next.client]);
  r.done();
});

Deno.test("Sessions replaces only the same tab's stale socket (same session, same connection id) with 4010", () => {
  const r = rig();
  const old = r.connect();
  const token = r.take(old.client, "Ada", { connection: "tab-1" })()!.token;
  const other = r.connect();
  const next = r.take(other.client, "Ada", { resume: token, connection: "tab-2" })()!.token;
  const back = r.connect();
  assert.notEqual(r.take(back.client, "Ada", { resume: next, connection: "tab-1" })(), null);
  assert.equal(old.socket.closeCode, CloseCode.replaced);
  assert.equal(other.socket.closeCode, undefined, "another tab stays");
  assert.deepEqual(r.sessions.clientsOf("ada"), [other.client, back.client]);
  r.done();
});

Deno.test("Sessions signs verified credentials in to the account of that very name; a lookalike's are no proof", () => {
  const r = rig();
  const admin = r.connect();
  r.take(admin.client, "admin");
  // A token for "аdmin" (Cyrillic а) proves who that user is, not that they are "admin".
  const mimic = r.connect();
  assert.equal(r.take(mimic.client, "\u0430dmin", { verified: true })(), null);
  assert.equal(mimic.socket.closeCode, CloseCode.nameTaken);
  assert.equal(mimic.socket.closeReason, "name taken");
  // The same name in another case or width is the same user: a new session, beside the first,
  // under the account's own spelling.
  const again = r.connect();
  const got = r.take(again.client, "ＡＤＭＩＮ", { verified: true })();
  assert.equal(got?.name, "admin");
  assert.equal(admin.socket.closeCode, undefined);
  assert.equal(r.accounts.listSessions(got!.accountId).length, 2);
  r.done();
});

Deno.test("Sessions with registration closed refuses a new name with 4001 and still signs accounts in", () => {
  const accounts = new SqliteAccountStore(new DatabaseSync(":memory:"));
  const open = rig(null, { accounts });
  const ada = open.connect();
  const token = open.take(ada.client, "Ada")()!.token;
  open.done();
  const r = rig(null, { accounts, registration: "closed" });
  const bob = r.connect();
  assert.equal(r.take(bob.client, "Bob")(), null);
  assert.equal(bob.socket.closeCode, CloseCode.unauthorized);
  assert.equal(bob.socket.closeReason, REGISTRATION_CLOSED);
  const back = r.connect();
  assert.equal(r.take(back.client, "Ada", { resume: token })()?.name, "Ada");
  r.done();
});

Deno.test("Sessions refuses a disabled account with 4001, its token and its name alike", () => {
  const r = rig();
  const ada = r.connect();
  const got = r.take(ada.client, "Ada")()!;
  ada.client.close(1000, "bye", "client");
  assert.equal(r.accounts.setDisabled(got.accountId, true), true);
  for (const proof of [{ resume: got.token }, { verified: true }]) {
    const again = r.connect();
    assert.equal(r.take(again.client, "Ada", proof)(), null);
    assert.equal(again.socket.closeCode, CloseCode.unauthorized, JSON.stringify(proof));
    assert.equal(again.socket.closeReason, ACCOUNT_DISABLED);
  }
  r.done();
});

Deno.test("Sessions releases an account unused for the TTL, not one in use, and its name is free again", async () => {
  const r = rig(null, { accountTtlMs: DAY_MS });
  const gone = r.connect();
  const old = r.take(gone.client, "Gone")()!;
  gone.client.close(1000, "bye", "client");
  const here = r.connect();
  r.take(here.client, "Here");
  // Connected all along: the sweep keeps its last use fresh.
  for (let t = 0; t <= DAY_MS + ACCOUNT_SWEEP_INTERVAL_MS; t += 5 * 60_000) {
    r.clock.now += 5 * 60_000;
    r.sessions.sweep();
    await settle();
  }
  assert.equal(r.accounts.accountByName("Gone"), null, "released after the TTL");
  assert.notEqual(r.accounts.accountByName("Here"), null, "kept while connected");
  const stranger = r.connect();
  const got = r.take(stranger.client, "Gone")();
  assert.equal(got?.name, "Gone");
  assert.notEqual(got?.accountId, old.accountId, "a new account");
  const stale = r.connect();
  assert.equal(
    r.take(stale.client, "Gone", { resume: old.token })(),
    null,
    "the old token is dead",
  );
  assert.equal(stale.socket.closeCode, CloseCode.nameTaken);
  r.done();
});

Deno.test("Sessions in a cluster claims a name with the account's first connection and releases it after its last", async () => {
  const cluster = new NameCluster();
  const r = rig(cluster);
  const first = r.connect();
  const got = r.take(first.client, "Ada");
  assert.equal(got(), null, "waits for the cluster");
  await settle();
  assert.equal(got()?.name, "Ada");
  assert.ok(cluster.held.has("ada"));
  const second = r.connect();
  assert.notEqual(r.take(second.client, "Ada", { resume: got()!.token })(), null, "no claim again");
  first.client.close(1000, "bye", "client");
  await settle();
  assert.deepEqual(cluster.released, [], "the account is still here");
  second.client.close(1000, "bye", "client");
  await settle();
  assert.deepEqual(cluster.released, ["ada"]);
  r.done();
});

Deno.test("Sessions in a cluster refuses a name another instance holds with NAME_HELD_ELSEWHERE", async () => {
  const cluster = new NameCluster();
  const accounts = new SqliteAccountStore(new DatabaseSync(":memory:"));
  cluster.held.add("bob");
  // Bob's account is used on another instance: its token is good, its claim is not.
  const other = rig(cluster, { accounts });
  const bobAccount = accounts.createAccount({ name: "Bob", now: 1 });
  assert.ok(bobAccount.ok);
  const bobSession = accounts.createSession(bobAccount.account.id, "web", 1);
  assert.ok(bobSession.ok);
  const bob = other.connect();
  other.take(bob.client, "Bob", { resume: bobSession.token });
  await settle();
  assert.equal(bob.socket.closeCode, CloseCode.nameTaken);
  assert.equal(bob.socket.closeReason, NAME_HELD_ELSEWHERE);
  other.done();
});

Deno.test("Sessions asks a client to try again when the cluster or the account store cannot answer", async () => {
  const cluster = new NameCluster();
  cluster.fail = true;
  const r = rig(cluster);
  const ada = r.connect();
  r.take(ada.client, "Ada");
  await settle();
  assert.equal(ada.socket.closeCode, CloseCode.tryAgain);
  assert.equal(r.failures.length, 1);
  const broken = new SqliteAccountStore(new DatabaseSync(":memory:"));
  broken.close();
  const s = rig(null, { accounts: broken });
  const bob = s.connect();
  s.take(bob.client, "Bob");
  await settle();
  assert.equal(bob.socket.closeCode, CloseCode.tryAgain);
  assert.equal(bob.socket.closeReason, "accounts unavailable, try again");
  assert.equal(s.failures.length, 1);
  r.done();
  s.done();
});

Deno.test("Sessions in a cluster runs one name's claim and release in turn, so a quick return keeps the claim", async () => {
  const cluster = new NameCluster();
  const r = rig(cluster);
  const first = r.connect();
  const token = r.take(first.client, "Ada");
  await settle();
  first.client.close(1000, "bye", "client");
  const back = r.connect();
  r.take(back.client, "Ada", { resume: token()!.token });
  await settle();
  await settle();
  assert.equal(back.client.name, "Ada");
  assert.ok(cluster.held.has("ada"), "held for the connection that came back");
  r.done();
});

Deno.test("Sessions closes every connection of names another instance took while this one was cut off", () => {
  const r = rig();
  const one = r.connect(), two = r.connect(), other = r.connect();
  const token = r.take(one.client, "Ada")()!.token;
  r.take(two.client, "Ada", { resume: token });
  r.take(other.client, "Bob");
  r.sessions.lost(["ada"]);
  assert.equal(one.socket.closeCode, CloseCode.nameTaken);
  assert.equal(two.socket.closeCode, CloseCode.nameTaken);
  assert.equal(other.socket.closeCode, undefined);
  assert.deepEqual(r.sessions.clientsOf("ada"), []);
  r.done();
});

Deno.test("Sessions signs a new device in with the account's password, as a session of its own beside the first", async () => {
  const r = rig();
  const laptop = r.connect();
  const made = r.take(laptop.client, "Ada", {
    password: "correct horse",
    device: "Firefox on Linux",
  });
  await settle();
  assert.equal(made()?.hasPassword, true, "a password chosen at the first hello is the account's");
  const phone = r.connect();
  const signedIn = r.take(phone.client, "ADA", { password: "correct horse", device: "Phone" });
  await settle();
  assert.equal(signedIn()?.name, "Ada");
  assert.notEqual(signedIn()!.token, made()!.token, "the new device gets a token of its own");
  assert.equal(laptop.socket.closeCode, undefined, "the laptop stays signed in");
  assert.deepEqual(r.sessions.clientsOf("ada"), [laptop.client, phone.client]);
  const devices = r.accounts.listSessions(made()!.accountId).map((s) => s.device).sort();
  assert.deepEqual(devices, ["Firefox on Linux", "Phone"]);
  r.done();
});

Deno.test("Sessions refuses a wrong password with 4001 and, past the limit, refuses without spending a hash", async () => {
  const r = rig();
  const owner = r.connect();
  r.take(owner.client, "Ada", { password: "correct horse" });
  await settle();
  for (let i = 0; i < MAX_FAILURES_PER_ACCOUNT; i++) {
    const guess = r.connect();
    assert.equal(r.take(guess.client, "Ada", { password: `guess number ${i}` })(), null);
    await settle();
    assert.equal(guess.socket.closeCode, CloseCode.unauthorized);
    assert.equal(guess.socket.closeReason, WRONG_PASSWORD);
  }
  const hashes = r.hashing.calls;
  // The right password too is refused now: the limit is on the account, not on wrong guesses.
  const late = r.connect();
  r.take(late.client, "Ada", { password: "correct horse" });
  await settle();
  assert.equal(late.socket.closeCode, CloseCode.unauthorized);
  assert.match(late.socket.closeReason ?? "", /^too many failed sign-ins, try again in \d+ s$/);
  assert.equal(r.hashing.calls, hashes, "no hash was spent on a refused sign-in");
  // The owner's token still works: the limit is on guessing passwords.
  assert.equal(owner.socket.closeCode, undefined);
  r.clock.now += 15 * 60_000;
  const later = r.connect();
  const got = r.take(later.client, "Ada", { password: "correct horse" });
  await settle();
  assert.equal(got()?.name, "Ada", "the window ages out");
  r.done();
});

Deno.test("Sessions treats a password for an account that has none as no proof: name taken", async () => {
  const r = rig();
  const ada = r.connect();
  r.take(ada.client, "Ada");
  const other = r.connect();
  r.take(other.client, "Ada", { password: "correct horse" });
  await settle();
  assert.equal(other.socket.closeCode, CloseCode.nameTaken);
  assert.equal(r.hashing.calls, 0);
  r.done();
});

Deno.test("Sessions with registration password needs a password for a new name, and refuses a short one with 4000", async () => {
  const r = rig(null, { registration: "password" });
  const bare = r.connect();
  assert.equal(r.take(bare.client, "Bob")(), null);
  assert.equal(bare.socket.closeCode, CloseCode.unauthorized);
  assert.equal(bare.socket.closeReason, PASSWORD_REQUIRED);
  const short = r.connect();
  r.take(short.client, "Bob", { password: "short" });
  assert.equal(short.socket.closeCode, CloseCode.badHandshake);
  assert.equal(
    short.socket.closeReason,
    "Cannot make the account: password must be at least 8 characters",
  );
  assert.equal(r.accounts.accountByName("Bob"), null, "nothing was made");
  const good = r.connect();
  const got = r.take(good.client, "Bob", { password: "long enough" });
  await settle();
  assert.equal(got()?.hasPassword, true);
  r.done();
});

Deno.test("Sessions asks a client to try again (1013) when too many password hashes wait, never saying wrong", async () => {
  const hashing = fakeDerive();
  let release!: () => void;
  const hasher = new PasswordHasher({ derive: hashing.derive, maxConcurrent: 1, maxQueued: 0 });
  const r = rig(null, { hasher });
  const owner = r.connect();
  r.take(owner.client, "Ada", { password: "correct horse" });
  await settle();
  hashing.state.hold = new Promise((resolve) => release = resolve);
  const first = r.connect();
  const firstGot = r.take(first.client, "Ada", { password: "correct horse" });
  await settle();
  // Another name's sign-in, so it is not queued behind Ada's turn but meets the full hasher.
  const second = r.connect();
  r.take(second.client, "Bob", { password: "another one" });
  await settle();
  assert.equal(second.socket.closeCode, CloseCode.tryAgain);
  assert.equal(second.socket.closeReason, SIGN_IN_BUSY);
  release();
  await settle();
  assert.equal(firstGot()?.name, "Ada");
  r.done();
});

Deno.test("Sessions closes a session's connections with 4001 signed out when it is ended", () => {
  const r = rig();
  const tab = r.connect();
  const got = r.take(tab.client, "Ada")()!;
  const same = r.connect();
  r.take(same.client, "Ada", { resume: got.token });
  const mine = r.sessions.sessionOf(tab.client)!;
  assert.equal(mine.accountId, got.accountId);
  r.sessions.endSessions([mine.session]);
  for (const { socket } of [tab, same]) {
    assert.equal(socket.closeCode, CloseCode.unauthorized);
    assert.equal(socket.closeReason, SIGNED_OUT);
  }
  r.done();
});
