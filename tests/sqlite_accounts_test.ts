/**
 * Specification of the SQLite account store: the shared account store spec
 * (account_store_spec.ts) on a file, then what only it promises: the account
 * tables live in the message store's file beside the messages and survive a restart, and a file
 * whose account schema is newer than the code is refused.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { SqliteStore } from "../store/sqlite_store.ts";
import { ACCOUNT_SCHEMA_VERSION } from "../store/sqlite_accounts.ts";
import { accountStoreSpec } from "./account_store_spec.ts";

/** Every row of every table of the file, as text, to look for secrets in. */
function dumpFile(path: string): string {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all();
    return tables.map((t) => JSON.stringify(db.prepare(`SELECT * FROM "${String(t.name)}"`).all()))
      .join("\n");
  } finally {
    db.close();
  }
}

accountStoreSpec("SqliteAccountStore", (dir) => {
  const path = `${dir}/chat.db`;
  const messages = SqliteStore.open(path);
  return {
    store: messages.accounts(),
    dump: () => dumpFile(path),
    dispose: () => messages.close(),
  };
});

/** Runs `fn` with a temporary directory that is removed afterwards. */
async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sqlite_accounts_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("SqliteAccountStore keeps accounts and sessions in the message store's file across a restart", () =>
  withDir((dir) => {
    const path = `${dir}/chat.db`;
    const first = SqliteStore.open(path);
    const made = first.accounts().createAccount({ name: "ann", now: 1 });
    assert.equal(made.ok, true);
    if (!made.ok) return;
    const s = first.accounts().createSession(made.account.id, "laptop", 1);
    assert.equal(s.ok, true);
    if (!s.ok) return;
    first.append([{ room: "general", from: "ann", text: "hi", ts: 1 }]);
    assert.equal(first.accounts(), first.accounts(), "one account store per message store");
    first.close();
    assert.throws(() => first.accounts(), /^Error: Cannot open account store: the store is closed/);

    const again = SqliteStore.open(path);
    try {
      const accounts = again.accounts();
      assert.equal(accounts.accountByName("ANN")?.id, made.account.id);
      assert.equal(accounts.findSession(s.token)?.session.device, "laptop");
      assert.equal(again.read("general", { limit: 10 }).length, 1, "messages are untouched");
    } finally {
      again.close();
    }
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      assert.equal(
        db.prepare("PRAGMA user_version").get()?.user_version,
        1,
        "the message schema is its own",
      );
      assert.equal(
        db.prepare("SELECT version FROM account_schema").get()?.version,
        ACCOUNT_SCHEMA_VERSION,
      );
      assert.equal(db.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
    } finally {
      db.close();
    }
  }));

Deno.test("SqliteAccountStore is not created until asked for: a message-only file gets no account tables", () =>
  withDir((dir) => {
    const path = `${dir}/chat.db`;
    SqliteStore.open(path).close();
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .all();
      assert.deepEqual(tables.map((t) => t.name), ["messages", "rooms"]);
    } finally {
      db.close();
    }
  }));

Deno.test("SqliteAccountStore refuses a file whose account schema is newer than the code", () =>
  withDir((dir) => {
    const path = `${dir}/chat.db`;
    const made = SqliteStore.open(path);
    made.accounts();
    made.close();
    const db = new DatabaseSync(path);
    db.exec("UPDATE account_schema SET version = 99");
    db.close();
    const store = SqliteStore.open(path);
    try {
      assert.throws(
        () => store.accounts(),
        /^Error: Cannot open account store: .* account schema version 99/,
      );
    } finally {
      store.close();
    }
  }));
