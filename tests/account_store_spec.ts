/**
 * The behavioural spec every account store must meet (store/accounts.ts), for the account store
 * tests to run against each store: SqliteAccountStore in sqlite_accounts_test.ts,
 * RedisAccountStore in redis_accounts_test.ts.
 *
 * This module registers no test by itself; each `accountStoreSpec` call registers the whole spec
 * for one store.
 */
import assert from "node:assert/strict";
import {
  type AccountStore,
  DEAD_INVITE_KEEP_MS,
  hashToken,
  MAX_DEVICE_CHARS,
  MAX_INVITE_USES,
  MAX_LIVE_INVITES_PER_ADMIN,
  MAX_RELEASED_PER_CALL,
  MAX_SESSIONS_PER_ACCOUNT,
} from "../store/accounts.ts";
import { nameKey } from "../protocol/protocol.ts";

/** A fresh, empty account store, and how to see everything it stored (to look for secrets). */
export interface AccountStoreRig {
  store: AccountStore;
  /** Every key and value the store holds, as text. */
  dump(): Promise<string> | string;
  /** Releases whatever the rig made (the store, its file or server keys). */
  dispose(): Promise<void> | void;
}

/** Makes a fresh rig; `dir` is a temporary directory it may put files in. */
export type AccountStoreFactory = (dir: string) => AccountStoreRig | Promise<AccountStoreRig>;

/** Options for {@linkcode accountStoreSpec}. */
export interface AccountStoreSpecOptions {
  /** Register every case as ignored, e.g. when the store's server is not installed. @default false */
  ignore?: boolean;
}

const DAY = 24 * 60 * 60_000;
const T0 = 1_700_000_000_000;

/**
 * Registers the whole spec for one store, each case named `${label} <case>`.
 *
 * @example
 * ```ts ignore
 * accountStoreSpec("SqliteAccountStore", () => {
 *   const messages = SqliteStore.open(":memory:");
 *   return { store: messages.accounts(), dump: () => "", dispose: () => messages.close() };
 * });
 * ```
 */
export function accountStoreSpec(
  label: string,
  factory: AccountStoreFactory,
  options: AccountStoreSpecOptions = {},
): void {
  const test = (name: string, fn: (store: AccountStore, rig: AccountStoreRig) => unknown) =>
    Deno.test({
      name: `${label} ${name}`,
      ignore: options.ignore ?? false,
      async fn() {
        const dir = await Deno.makeTempDir({ prefix: "account_store_test_" });
        let rig: AccountStoreRig | undefined;
        try {
          rig = await factory(dir);
          await fn(rig.store, rig);
        } finally {
          await rig?.dispose();
          await Deno.remove(dir, { recursive: true });
        }
      },
    });

  /** Creates an account that must not exist yet. */
  const make = async (
    store: AccountStore,
    name: string,
    extra: { passwordHash?: string; role?: "admin" | "member"; now?: number } = {},
  ) => {
    const r = await store.createAccount({ name, now: T0, ...extra });
    if (!r.ok) throw new Error(`Cannot make account ${name}: ${r.reason}`);
    return r.account;
  };

  /** Creates a session that must be created. */
  const session = async (store: AccountStore, accountId: string, device = "laptop", now = T0) => {
    const r = await store.createSession(accountId, device, now);
    if (!r.ok) throw new Error(`Cannot make session: ${r.reason}`);
    return r;
  };

  // -------------------------------------------------------------------------------------------
  // Accounts.

  test("createAccount stores every field, with member, no password and enabled by default", async (store) => {
    const r = await store.createAccount({ name: "Zoë", now: T0 });
    assert.equal(r.ok, true);
    if (!r.ok) return;
    const a = r.account;
    assert.match(a.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(a, {
      id: a.id,
      name: "Zoë",
      key: nameKey("Zoë"),
      createdAt: T0,
      lastActiveAt: T0,
      passwordHash: null,
      role: "member",
      disabled: false,
    });
    assert.deepEqual(await store.accountById(a.id), a);
    assert.deepEqual(await store.accountByName("Zoë"), a);
    const admin = await make(store, "root", { passwordHash: "$scrypt$x", role: "admin" });
    assert.equal((await store.accountById(admin.id))?.passwordHash, "$scrypt$x");
    assert.equal((await store.accountById(admin.id))?.role, "admin");
    assert.equal(await store.accountById("no-such-id"), null);
    assert.equal(await store.accountByName("nobody"), null);
  });

  test("a name whose key is taken is refused with name_taken: case, width, lookalikes", async (store) => {
    const alice = await make(store, "alice");
    for (const name of ["alice", "ALICE", "ａｌｉｃｅ", "\u0430lice", "al\u0131ce"]) {
      assert.deepEqual(
        await store.createAccount({ name, now: T0 }),
        { ok: false, reason: "name_taken" },
        name,
      );
      assert.equal((await store.accountByName(name))?.id, alice.id, `${name} finds alice`);
    }
    assert.equal((await store.createAccount({ name: "alicia", now: T0 })).ok, true);
  });

  test("setPassword, setRole and setDisabled change one account and say false for none", async (store) => {
    const a = await make(store, "ann");
    const b = await make(store, "bob");
    assert.equal(await store.setPassword(a.id, "$scrypt$hash"), true);
    assert.equal(await store.setRole(a.id, "admin"), true);
    assert.equal(await store.setDisabled(a.id, true), true);
    const changed = await store.accountById(a.id);
    assert.equal(changed?.passwordHash, "$scrypt$hash");
    assert.equal(changed?.role, "admin");
    assert.equal(changed?.disabled, true);
    assert.deepEqual(await store.accountById(b.id), b, "the other account is untouched");
    assert.equal(await store.setPassword(a.id, null), true);
    assert.equal((await store.accountById(a.id))?.passwordHash, null);
    assert.equal(await store.setDisabled(a.id, false), true);
    assert.equal((await store.accountById(a.id))?.disabled, false);
    assert.equal(await store.setPassword("no-such-id", "x"), false);
    assert.equal(await store.setRole("no-such-id", "admin"), false);
    assert.equal(await store.setDisabled("no-such-id", true), false);
  });

  test("listAccounts pages by name key and never shows a password hash", async (store) => {
    for (const name of ["Carol", "alice", "Bob", "dave"]) await make(store, name);
    await store.setPassword((await store.accountByName("bob"))!.id, "$scrypt$secret");
    const first = await store.listAccounts(2);
    assert.deepEqual(first.map((a) => a.name), ["alice", "Bob"]);
    assert.deepEqual(first.map((a) => a.hasPassword), [false, true]);
    for (const a of first) assert.equal("passwordHash" in a, false);
    const rest = await store.listAccounts(10, first[1].key);
    assert.deepEqual(rest.map((a) => a.name), ["Carol", "dave"]);
    assert.deepEqual(await store.listAccounts(10, "dave"), []);
    assert.deepEqual(await store.listAccounts(0), []);
  });

  test("releaseInactive releases only password-less members idle past the ttl, with their sessions and rooms", async (store) => {
    const ttl = 30 * DAY;
    const idle = await make(store, "idle");
    const recent = await make(store, "recent", { now: T0 + 20 * DAY });
    const locked = await make(store, "locked", { passwordHash: "$scrypt$h" });
    const boss = await make(store, "boss", { role: "admin" });
    const s = await session(store, idle.id);
    await store.joinRoom(idle.id, "general", 10);
    const released = await store.releaseInactive(T0 + ttl + 1, ttl);
    assert.deepEqual(released.map((a) => a.name), ["idle"]);
    assert.equal(await store.accountById(idle.id), null);
    assert.equal(await store.accountByName("idle"), null);
    assert.equal(await store.findSession(s.token), null, "its session went with it");
    assert.deepEqual(await store.listSessions(idle.id), []);
    assert.deepEqual(await store.listRooms(idle.id), []);
    for (const kept of [recent, locked, boss]) {
      assert.notEqual(await store.accountById(kept.id), null);
    }
    assert.equal(
      (await store.createAccount({ name: "IDLE", now: T0 + ttl + 2 })).ok,
      true,
      "the name is free",
    );
    assert.deepEqual(await store.releaseInactive(T0 + ttl + 1, ttl), []);
  });

  test(`releaseInactive releases at most ${MAX_RELEASED_PER_CALL} per call, the longest idle first`, async (store) => {
    const ttl = DAY;
    for (let i = 0; i < MAX_RELEASED_PER_CALL + 2; i++) {
      await make(store, `user${i}`, { now: T0 + (MAX_RELEASED_PER_CALL + 2 - i) });
    }
    const first = await store.releaseInactive(T0 + 2 * DAY, ttl);
    assert.equal(first.length, MAX_RELEASED_PER_CALL);
    assert.equal(first.some((a) => a.name === "user0" || a.name === "user1"), false, "newest kept");
    assert.deepEqual(
      (await store.releaseInactive(T0 + 2 * DAY, ttl)).map((a) => a.name).sort(),
      ["user0", "user1"],
    );
  });

  test("activity keeps an account: touchSession moves lastActiveAt forward, never back", async (store) => {
    const ttl = 30 * DAY;
    const a = await make(store, "busy");
    const s = await session(store, a.id);
    await store.touchSession(s.session.id, T0 + 25 * DAY);
    await store.touchSession(s.session.id, T0 + 1 * DAY); // a late, older touch
    assert.equal((await store.accountById(a.id))?.lastActiveAt, T0 + 25 * DAY);
    assert.equal((await store.listSessions(a.id))[0].lastSeenAt, T0 + 25 * DAY);
    assert.deepEqual(await store.releaseInactive(T0 + ttl + 1, ttl), []);
    assert.deepEqual(
      (await store.releaseInactive(T0 + 25 * DAY + ttl + 1, ttl)).map((x) => x.id),
      [a.id],
    );
    await store.touchSession("no-such-session", T0); // nothing to touch: no error
  });

  test("setting a password keeps an idle account; clearing it makes it releasable again", async (store) => {
    const ttl = 30 * DAY;
    const a = await make(store, "ann");
    await store.setPassword(a.id, "$scrypt$h");
    assert.deepEqual(await store.releaseInactive(T0 + ttl + 1, ttl), []);
    await store.setPassword(a.id, null);
    assert.deepEqual((await store.releaseInactive(T0 + ttl + 1, ttl)).map((x) => x.id), [a.id]);
  });

  // -------------------------------------------------------------------------------------------
  // Sessions.

  test(
    "a session's token is 256 random bits, returned once, and finds the session and account",
    async (store, rig) => {
      const a = await make(store, "ann");
      const r = await session(store, a.id, "Firefox on Linux");
      assert.match(r.token, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(r.evicted, null);
      assert.deepEqual(r.session, {
        id: r.session.id,
        accountId: a.id,
        device: "Firefox on Linux",
        createdAt: T0,
        lastSeenAt: T0,
      });
      const found = await store.findSession(r.token);
      assert.deepEqual(found, { session: r.session, account: a, previous: false });
      // Another last character (a token's last one is any of 16, "A" among them).
      const other = r.token.slice(0, -1) + (r.token.endsWith("A") ? "E" : "A");
      assert.equal(await store.findSession(other), null);
      assert.equal(await store.findSession(""), null);
      assert.notEqual((await session(store, a.id)).token, r.token);
      const dump = await rig.dump();
      assert.equal(dump.includes(r.token), false, "the token itself is not stored");
      assert.equal(dump.includes(hashToken(r.token)), true, "its SHA-256 is");
    },
  );

  test("createSession refuses an unknown or disabled account, and device labels out of bounds", async (store) => {
    assert.deepEqual(await store.createSession("no-such-id", "x", T0), {
      ok: false,
      reason: "no_account",
    });
    const a = await make(store, "ann");
    await store.setDisabled(a.id, true);
    assert.deepEqual(await store.createSession(a.id, "x", T0), { ok: false, reason: "disabled" });
    await store.setDisabled(a.id, false);
    await assert.rejects(async () => await store.createSession(a.id, "", T0), /device label/);
    await assert.rejects(
      async () => await store.createSession(a.id, "x".repeat(MAX_DEVICE_CHARS + 1), T0),
      /device label/,
    );
    for (const device of ["a\u0000b", "line\nbreak", "bell\u0007", "c1\u0085"]) {
      await assert.rejects(
        async () => await store.createSession(a.id, device, T0),
        /device label/,
        JSON.stringify(device),
      );
    }
    assert.equal((await store.createSession(a.id, "😀".repeat(MAX_DEVICE_CHARS), T0)).ok, true);
  });

  test(
    "rotateSession: the new token works, and the old one only until the new one is used",
    async (store, rig) => {
      const a = await make(store, "ann");
      const { token: first, session: s } = await session(store, a.id);
      const rotated = await store.rotateSession(first);
      assert.notEqual(rotated, null);
      const second = rotated!.token;
      assert.notEqual(second, first);
      assert.equal(rotated!.session.id, s.id);
      // The welcome carrying `second` may have been lost: `first` still signs in, as "previous".
      assert.deepEqual(await store.findSession(first), { session: s, account: a, previous: true });
      assert.equal((await store.findSession(second))?.previous, false);
      // `second` was used: `first` is dead from now on.
      assert.equal(await store.findSession(first), null);
      assert.equal(await store.rotateSession(first), null);
      assert.equal((await store.findSession(second))?.session.id, s.id);
      const dump = await rig.dump();
      assert.equal(dump.includes(second), false);
      assert.equal(dump.includes(hashToken(first)), false, "a dead token's hash is gone too");
    },
  );

  test("a welcome lost twice: rotating from the previous token keeps it until the newest is used", async (store) => {
    const a = await make(store, "ann");
    const { token: t1 } = await session(store, a.id);
    const t2 = (await store.rotateSession(t1))!.token; // lost
    const t3 = (await store.rotateSession(t1))!.token; // the client came back with t1 again
    assert.equal(await store.findSession(t2), null, "the lost token is dead");
    assert.equal((await store.findSession(t1))?.previous, true);
    assert.equal((await store.findSession(t3))?.previous, false);
    assert.equal(await store.findSession(t1), null);
    assert.equal(await store.rotateSession("never-issued"), null);
  });

  test("revokeSession ends one session of its own account only", async (store) => {
    const a = await make(store, "ann");
    const b = await make(store, "bob");
    const s1 = await session(store, a.id, "phone");
    const s2 = await session(store, a.id, "laptop");
    const sb = await session(store, b.id);
    assert.equal(await store.revokeSession(b.id, s1.session.id), false, "not bob's session");
    assert.notEqual(await store.findSession(s1.token), null);
    assert.equal(await store.revokeSession(a.id, s1.session.id), true);
    assert.equal(await store.revokeSession(a.id, s1.session.id), false);
    assert.equal(await store.findSession(s1.token), null);
    assert.notEqual(await store.findSession(s2.token), null);
    assert.notEqual(await store.findSession(sb.token), null);
  });

  test("revokeAllSessions ends every session but the one kept, and says which", async (store) => {
    const a = await make(store, "ann");
    const s = await Promise.all([1, 2, 3].map((i) => session(store, a.id, `device ${i}`)));
    const revoked = await store.revokeAllSessions(a.id, s[1].session.id);
    assert.deepEqual(revoked.sort(), [s[0].session.id, s[2].session.id].sort());
    assert.equal(await store.findSession(s[0].token), null);
    assert.notEqual(await store.findSession(s[1].token), null);
    assert.deepEqual(await store.revokeAllSessions(a.id), [s[1].session.id]);
    assert.deepEqual(await store.listSessions(a.id), []);
  });

  test("listSessions shows device, created and last seen, most recent first, and no secret", async (store) => {
    const a = await make(store, "ann");
    const old = await session(store, a.id, "old phone", T0);
    const fresh = await session(store, a.id, "laptop", T0 + 10);
    await store.touchSession(old.session.id, T0 + 20);
    const list = await store.listSessions(a.id);
    assert.deepEqual(list.map((s) => [s.device, s.createdAt, s.lastSeenAt]), [
      ["old phone", T0, T0 + 20],
      ["laptop", T0 + 10, T0 + 10],
    ]);
    for (const s of list) {
      assert.deepEqual(Object.keys(s).sort(), [
        "accountId",
        "createdAt",
        "device",
        "id",
        "lastSeenAt",
      ]);
    }
    assert.equal(list[1].id, fresh.session.id);
  });

  test(`past ${MAX_SESSIONS_PER_ACCOUNT} sessions the least recently seen one is revoked`, async (store) => {
    const a = await make(store, "ann");
    const made = [];
    for (let i = 0; i < MAX_SESSIONS_PER_ACCOUNT; i++) {
      made.push(await session(store, a.id, `d${i}`, T0 + i));
    }
    await store.touchSession(made[0].session.id, T0 + 1000); // d0 was seen last; d1 longest ago
    const extra = await session(store, a.id, "one more", T0 + 2000);
    assert.equal(extra.evicted, made[1].session.id);
    assert.equal(await store.findSession(made[1].token), null);
    assert.notEqual(await store.findSession(made[0].token), null);
    assert.equal((await store.listSessions(a.id)).length, MAX_SESSIONS_PER_ACCOUNT);
  });

  test("disabling an account ends its sessions at once", async (store) => {
    const a = await make(store, "ann");
    const s = await session(store, a.id);
    await store.setDisabled(a.id, true);
    assert.equal(await store.findSession(s.token), null);
    assert.deepEqual(await store.listSessions(a.id), []);
    await store.setDisabled(a.id, false);
    assert.equal(await store.findSession(s.token), null, "enabling again does not revive them");
  });

  // -------------------------------------------------------------------------------------------
  // Rooms and read markers.

  test("joinRoom, leaveRoom and listRooms keep an account's rooms within maxRooms", async (store) => {
    const a = await make(store, "ann");
    assert.deepEqual(await store.joinRoom(a.id, "general", 2), { ok: true, added: true });
    assert.deepEqual(await store.joinRoom(a.id, "general", 2), { ok: true, added: false });
    assert.deepEqual(await store.joinRoom(a.id, "dev", 2), { ok: true, added: true });
    assert.deepEqual(await store.joinRoom(a.id, "random", 2), {
      ok: false,
      reason: "too_many_rooms",
    });
    assert.deepEqual(
      await store.joinRoom(a.id, "dev", 2),
      { ok: true, added: false },
      "rejoining is no new room",
    );
    assert.deepEqual(await store.listRooms(a.id), [
      { room: "dev", lastRead: 0 },
      { room: "general", lastRead: 0 },
    ]);
    assert.equal(await store.leaveRoom(a.id, "dev"), true);
    assert.equal(await store.leaveRoom(a.id, "dev"), false);
    assert.deepEqual(await store.joinRoom(a.id, "random", 2), { ok: true, added: true });
    assert.deepEqual(await store.joinRoom("no-such-id", "general", 2), {
      ok: false,
      reason: "no_account",
    });
    assert.deepEqual(await store.listRooms("no-such-id"), []);
  });

  test("markRead only moves forward, only for joined rooms, and leaving forgets it", async (store) => {
    const a = await make(store, "ann");
    const b = await make(store, "bob");
    await store.joinRoom(a.id, "general", 10);
    await store.joinRoom(b.id, "general", 10);
    assert.equal(await store.markRead(a.id, "general", 7), 7);
    assert.equal(await store.markRead(a.id, "general", 3), 7, "a late, older marker");
    assert.equal(await store.markRead(a.id, "general", 9), 9);
    assert.equal(await store.markRead(a.id, "elsewhere", 5), null);
    assert.deepEqual(await store.listRooms(a.id), [{ room: "general", lastRead: 9 }]);
    assert.deepEqual(await store.listRooms(b.id), [{ room: "general", lastRead: 0 }]);
    await store.leaveRoom(a.id, "general");
    await store.joinRoom(a.id, "general", 10);
    assert.deepEqual(await store.listRooms(a.id), [{ room: "general", lastRead: 0 }]);
  });

  // -------------------------------------------------------------------------------------------
  // Invites.

  test(
    "an invite is used up after maxUses, with its token returned once and stored hashed",
    async (store, rig) => {
      const admin = await make(store, "root", { role: "admin" });
      const r = await store.createInvite({
        createdBy: admin.id,
        expiresAt: T0 + DAY,
        maxUses: 2,
        now: T0,
      });
      assert.equal(r.ok, true);
      if (!r.ok) return;
      assert.match(r.token, /^[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(r.invite, {
        id: r.invite.id,
        createdBy: admin.id,
        createdAt: T0,
        expiresAt: T0 + DAY,
        maxUses: 2,
        uses: 0,
        revokedAt: null,
      });
      const one = await store.consumeInvite(r.token, T0 + 1);
      assert.deepEqual(one, { ok: true, invite: { ...r.invite, uses: 1 } });
      assert.equal((await store.consumeInvite(r.token, T0 + 2)).ok, true);
      assert.deepEqual(await store.consumeInvite(r.token, T0 + 3), {
        ok: false,
        reason: "used_up",
      });
      assert.deepEqual(await store.listInvites(), [{ ...r.invite, uses: 2 }]);
      const dump = await rig.dump();
      assert.equal(dump.includes(r.token), false);
      assert.equal(dump.includes(hashToken(r.token)), true);
    },
  );

  test("an invite is refused with distinct reasons: unknown, expired, revoked", async (store) => {
    const admin = await make(store, "root", { role: "admin" });
    const made = async (expiresAt: number, now: number) => {
      const r = await store.createInvite({ createdBy: admin.id, expiresAt, maxUses: 5, now });
      if (!r.ok) throw new Error("Cannot make invite");
      return r;
    };
    assert.deepEqual(await store.consumeInvite("no-such-token", T0), {
      ok: false,
      reason: "unknown",
    });
    const soon = await made(T0 + 1000, T0);
    assert.equal((await store.consumeInvite(soon.token, T0 + 999)).ok, true);
    assert.deepEqual(await store.consumeInvite(soon.token, T0 + 1000), {
      ok: false,
      reason: "expired",
    });
    const later = await made(T0 + DAY, T0 + 1);
    assert.equal(await store.revokeInvite(later.invite.id, T0 + 5), true);
    assert.equal(await store.revokeInvite(later.invite.id, T0 + 6), false, "revoked already");
    assert.equal(await store.revokeInvite("no-such-id", T0), false);
    assert.deepEqual(await store.consumeInvite(later.token, T0 + 10), {
      ok: false,
      reason: "revoked",
    });
    assert.deepEqual(
      (await store.listInvites()).map((i) => [i.id, i.revokedAt, i.uses]),
      [[later.invite.id, T0 + 5, 0], [soon.invite.id, null, 1]],
      "newest first",
    );
  });

  test("concurrent uses of an invite are counted exactly: no more succeed than it allows", async (store) => {
    const admin = await make(store, "root", { role: "admin" });
    const r = await store.createInvite({
      createdBy: admin.id,
      expiresAt: T0 + DAY,
      maxUses: 3,
      now: T0,
    });
    if (!r.ok) throw new Error("Cannot make invite");
    const results = await Promise.all(
      Array.from({ length: 10 }, () => Promise.resolve(store.consumeInvite(r.token, T0 + 1))),
    );
    assert.equal(results.filter((x) => x.ok).length, 3);
    assert.equal(results.filter((x) => !x.ok && x.reason === "used_up").length, 7);
  });

  test(`an admin holds at most ${MAX_LIVE_INVITES_PER_ADMIN} live invites; dead ones do not count`, async (store) => {
    const admin = await make(store, "root", { role: "admin" });
    const other = await make(store, "second", { role: "admin" });
    const ids: string[] = [];
    for (let i = 0; i < MAX_LIVE_INVITES_PER_ADMIN; i++) {
      const r = await store.createInvite({
        createdBy: admin.id,
        expiresAt: T0 + DAY,
        maxUses: 1,
        now: T0 + i,
      });
      assert.equal(r.ok, true, `invite ${i + 1}`);
      if (r.ok) ids.push(r.invite.id);
    }
    const next = { createdBy: admin.id, expiresAt: T0 + DAY, maxUses: 1, now: T0 + 100 };
    assert.deepEqual(await store.createInvite(next), { ok: false, reason: "too_many_invites" });
    assert.equal(
      (await store.createInvite({ ...next, createdBy: other.id })).ok,
      true,
      "per admin",
    );
    await store.revokeInvite(ids[0], T0 + 101);
    assert.equal((await store.createInvite(next)).ok, true, "a revoked invite is not live");
    assert.deepEqual(await store.createInvite(next), { ok: false, reason: "too_many_invites" });
    assert.equal(
      (await store.createInvite({ ...next, now: T0 + DAY + 1, expiresAt: T0 + 2 * DAY })).ok,
      true,
      "expired invites are not live",
    );
  });

  test("createInvite refuses an expiry not after now and uses out of 1..MAX_INVITE_USES", async (store) => {
    const admin = await make(store, "root", { role: "admin" });
    const base = { createdBy: admin.id, expiresAt: T0 + DAY, maxUses: 1, now: T0 };
    await assert.rejects(
      async () => await store.createInvite({ ...base, expiresAt: T0 }),
      /expire/,
    );
    await assert.rejects(async () => await store.createInvite({ ...base, maxUses: 0 }), /uses/);
    await assert.rejects(
      async () => await store.createInvite({ ...base, maxUses: MAX_INVITE_USES + 1 }),
      /uses/,
    );
    await assert.rejects(async () => await store.createInvite({ ...base, maxUses: 1.5 }), /uses/);
    assert.deepEqual(await store.listInvites(), []);
  });

  test("pruneInvites deletes invites dead for longer than DEAD_INVITE_KEEP_MS, and only those", async (store) => {
    const admin = await make(store, "root", { role: "admin" });
    const mk = async (expiresAt: number, maxUses = 1) => {
      const r = await store.createInvite({ createdBy: admin.id, expiresAt, maxUses, now: T0 });
      if (!r.ok) throw new Error("Cannot make invite");
      return r;
    };
    const expired = await mk(T0 + 1000);
    const revoked = await mk(T0 + 100 * DAY);
    await store.revokeInvite(revoked.invite.id, T0 + 2000);
    const usedUp = await mk(T0 + 100 * DAY);
    await store.consumeInvite(usedUp.token, T0 + 3000);
    const live = await mk(T0 + 100 * DAY, 5);
    await store.consumeInvite(live.token, T0 + 3000);
    assert.equal(await store.pruneInvites(T0 + 1000 + DEAD_INVITE_KEEP_MS), 0, "not yet");
    assert.equal(await store.pruneInvites(T0 + 1001 + DEAD_INVITE_KEEP_MS), 1);
    assert.deepEqual(await store.consumeInvite(expired.token, T0 + 2 * DEAD_INVITE_KEEP_MS), {
      ok: false,
      reason: "unknown",
    });
    assert.equal(await store.pruneInvites(T0 + 3001 + DEAD_INVITE_KEEP_MS), 2);
    assert.deepEqual((await store.listInvites()).map((i) => i.id), [live.invite.id]);
  });

  // -------------------------------------------------------------------------------------------
  // The admin bootstrap.

  test(
    "the bootstrap token is made while no account exists, works once, and makes an admin",
    async (store, rig) => {
      const token = await store.createBootstrapToken(T0);
      assert.notEqual(token, null);
      assert.match(token!, /^[A-Za-z0-9_-]{43}$/);
      const dump = await rig.dump();
      assert.equal(dump.includes(token!), false);
      assert.equal(dump.includes(hashToken(token!)), true);
      const first = await make(store, "first");
      assert.equal(await store.useBootstrapToken("wrong", first.id), false);
      assert.equal(await store.useBootstrapToken(token!, "no-such-id"), false);
      assert.equal(await store.useBootstrapToken(token!, first.id), true);
      assert.equal((await store.accountById(first.id))?.role, "admin");
      const second = await make(store, "second");
      assert.equal(await store.useBootstrapToken(token!, second.id), false, "once only");
      assert.equal((await store.accountById(second.id))?.role, "member");
      assert.equal(await store.createBootstrapToken(T0 + 1), null, "never again once used");
    },
  );

  test("an unused bootstrap token is replaced at the next start; once accounts exist, none is made", async (store) => {
    const old = await store.createBootstrapToken(T0);
    const fresh = await store.createBootstrapToken(T0 + 1);
    assert.notEqual(fresh, null);
    assert.notEqual(fresh, old);
    const a = await make(store, "ann");
    assert.equal(await store.useBootstrapToken(old!, a.id), false, "only the newest link works");
    const again = await store.createBootstrapToken(T0 + 2);
    assert.notEqual(again, null, "still unused: a restart prints a new link");
    assert.equal(await store.useBootstrapToken(fresh!, a.id), false);
    assert.equal(await store.useBootstrapToken(again!, a.id), true);
  });

  test("no bootstrap token is made for a store that already has accounts", async (store) => {
    await make(store, "ann");
    assert.equal(await store.createBootstrapToken(T0), null);
  });

  // -------------------------------------------------------------------------------------------

  test("close is safe twice and every call after it fails with Cannot", async (store) => {
    await store.close();
    await store.close();
    await assert.rejects(
      async () => await store.createAccount({ name: "late", now: T0 }),
      /^Error: Cannot/,
    );
    await assert.rejects(async () => await store.findSession("x"), /^Error: Cannot/);
  });
}
