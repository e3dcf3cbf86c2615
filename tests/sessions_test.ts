/** Names, resume tokens and reservations, specified with fake sockets, an injected clock and a fake cluster. */
import assert from "node:assert/strict";
import { Client, type ClientHandler } from "../client.ts";
import { fakeClientOptions, FakeSocket } from "./fakes.ts";
import type { Cluster } from "../hub/cluster.ts";
import { CloseCode } from "../protocol/protocol.ts";
import {
  NAME_HELD_ELSEWHERE,
  NAME_RESERVATION_MS,
  type Session,
  Sessions,
} from "../hub/sessions.ts";

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

function rig(cluster: Cluster | null = null) {
  const clock = { now: 1_000_000 };
  let tokens = 0;
  const failures: unknown[] = [];
  const sessions = new Sessions({
    cluster,
    now: () => clock.now,
    makeToken: () => `token-${++tokens}`,
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
    clock,
    failures,
    connect(): { client: Client; socket: FakeSocket } {
      const socket = new FakeSocket();
      const client = new Client(socket, handler, fakeClientOptions());
      clients.push(client);
      return { client, socket };
    },
    /** Asks for `name`; returns what has been granted so far: the session, or null. */
    take(
      client: Client,
      name: string,
      proof: { resume?: string; verified?: boolean } = {},
    ): () => Session | null {
      let granted: Session | null = null;
      sessions.take(client, name, { verified: false, ...proof }, (s) => granted = s);
      return () => granted;
    },
    done() {
      for (const c of clients) c.close(1000, "done", "client");
    },
  };
}

Deno.test("Sessions grants a free name with a fresh token and names the client", () => {
  const r = rig();
  const { client } = r.connect();
  const got = r.take(client, "Ada");
  assert.equal(got()?.name, "Ada");
  assert.equal(got()?.token, "token-1");
  assert.equal(client.name, "Ada");
  assert.equal(r.sessions.clientOf(client.key), client);
  r.done();
});

Deno.test("Sessions refuses a held name without proof, whatever its case", () => {
  const r = rig();
  const first = r.connect();
  r.take(first.client, "Ada");
  const second = r.connect();
  assert.equal(r.take(second.client, "ADA")(), null);
  assert.equal(second.socket.closeCode, CloseCode.nameTaken);
  assert.equal(second.socket.closeReason, "name taken");
  assert.equal(first.socket.closeCode, undefined);
  assert.equal(r.sessions.clientOf(first.client.key), first.client);
  r.done();
});

Deno.test("Sessions lets the resume token holder replace a half-open connection, with a new token that alone works after", () => {
  const r = rig();
  const old = r.connect();
  const token = r.take(old.client, "Ada")()!.token;
  const next = r.connect();
  const got = r.take(next.client, "Ada", { resume: token });
  assert.equal(old.socket.closeCode, CloseCode.replaced);
  const rotated = got()?.token;
  assert.equal(rotated, "token-2", "a new token at the takeover");
  assert.equal(r.sessions.clientOf(next.client.key), next.client);
  // Whoever else has the old token (leaked, or a stale tab) cannot take the name any more.
  const leaked = r.connect();
  assert.equal(r.take(leaked.client, "Ada", { resume: token })(), null);
  assert.equal(leaked.socket.closeCode, CloseCode.nameTaken);
  assert.equal(next.socket.closeCode, undefined);
  const again = r.connect();
  assert.equal(r.take(again.client, "Ada", { resume: rotated })()?.token, "token-3");
  assert.equal(next.socket.closeCode, CloseCode.replaced);
  r.done();
});

Deno.test("Sessions rotates the token when verified credentials take a name over", () => {
  const r = rig();
  const first = r.connect();
  const token = r.take(first.client, "Ada")()!.token;
  const second = r.connect();
  assert.equal(r.take(second.client, "Ada", { verified: true })()?.token, "token-2");
  const stale = r.connect();
  assert.equal(r.take(stale.client, "Ada", { resume: token })(), null);
  assert.equal(stale.socket.closeCode, CloseCode.nameTaken);
  r.done();
});

Deno.test("Sessions reserves a disconnected name for its token holder until the reservation ends", () => {
  const r = rig();
  const ada = r.connect();
  const token = r.take(ada.client, "Ada")()!.token;
  ada.client.close(1000, "bye", "client");
  assert.equal(r.sessions.clientOf("ada"), null);

  r.clock.now += NAME_RESERVATION_MS - 1;
  const stranger = r.connect();
  assert.equal(r.take(stranger.client, "Ada")(), null);
  assert.equal(stranger.socket.closeCode, CloseCode.nameTaken);
  const back = r.connect();
  const rotated = r.take(back.client, "Ada", { resume: token })()?.token;
  assert.equal(rotated, "token-2", "taking a reservation back rotates the token too");
  back.client.close(1000, "bye", "client");
  const stale = r.connect();
  assert.equal(r.take(stale.client, "Ada", { resume: token })(), null, "the old token is spent");
  assert.equal(stale.socket.closeCode, CloseCode.nameTaken);

  r.clock.now += NAME_RESERVATION_MS;
  const later = r.connect();
  const got = r.take(later.client, "Ada");
  assert.notEqual(got()?.token, token, "a new holder gets a new token");
  r.done();
});

Deno.test("Sessions accepts verified credentials as proof for a held name", () => {
  const r = rig();
  const first = r.connect();
  r.take(first.client, "Ada");
  const second = r.connect();
  assert.notEqual(r.take(second.client, "Ada", { verified: true })(), null);
  assert.equal(first.socket.closeCode, CloseCode.replaced);
  r.done();
});

Deno.test("Sessions takes verified credentials for a lookalike name as no proof: name taken", () => {
  const r = rig();
  const admin = r.connect();
  r.take(admin.client, "admin");
  // A token for "аdmin" (Cyrillic а) proves who that user is, not that they are "admin".
  const mimic = r.connect();
  assert.equal(r.take(mimic.client, "\u0430dmin", { verified: true })(), null);
  assert.equal(mimic.socket.closeCode, CloseCode.nameTaken);
  assert.equal(mimic.socket.closeReason, "name taken");
  assert.equal(admin.socket.closeCode, undefined);
  assert.equal(r.sessions.clientOf(admin.client.key), admin.client);
  // The same name in another case or width is still the same user, as before.
  const again = r.connect();
  assert.equal(r.take(again.client, "ＡＤＭＩＮ", { verified: true })()?.name, "ＡＤＭＩＮ");
  assert.equal(admin.socket.closeCode, CloseCode.replaced);
  r.done();
});

Deno.test("Sessions sweep frees only names whose reservation has ended", () => {
  const r = rig();
  const gone = r.connect();
  r.take(gone.client, "Gone");
  gone.client.close(1000, "bye", "client");
  const here = r.connect();
  r.take(here.client, "Here");
  r.clock.now += NAME_RESERVATION_MS - 1;
  r.sessions.sweep();
  assert.equal(r.sessions.size, 2, "reserved one ms longer");
  r.clock.now += 1;
  r.sessions.sweep();
  assert.equal(r.sessions.size, 1);
  assert.equal(r.sessions.clientOf("here"), here.client);
  r.done();
});

Deno.test("Sessions in a cluster claims a new name everywhere first and releases it at the disconnect", async () => {
  const cluster = new NameCluster();
  const r = rig(cluster);
  const ada = r.connect();
  const got = r.take(ada.client, "Ada");
  assert.equal(got(), null, "granted only once the cluster answers");
  await settle();
  assert.equal(got()?.name, "Ada");
  assert.ok(cluster.held.has("ada"));
  ada.client.close(1000, "bye", "client");
  assert.deepEqual(cluster.released, ["ada"]);
  r.done();
});

Deno.test("Sessions in a cluster refuses a name another instance holds", async () => {
  const cluster = new NameCluster();
  cluster.held.add("ada");
  const r = rig(cluster);
  const ada = r.connect();
  const got = r.take(ada.client, "Ada");
  await settle();
  assert.equal(got(), null);
  assert.equal(ada.socket.closeCode, CloseCode.nameTaken);
  assert.equal(ada.socket.closeReason, NAME_HELD_ELSEWHERE, "said apart from a local refusal");
  r.done();
});

Deno.test("Sessions in a cluster asks a client to try again when the cluster cannot answer", async () => {
  const cluster = new NameCluster();
  cluster.fail = true;
  const r = rig(cluster);
  const ada = r.connect();
  r.take(ada.client, "Ada");
  await settle();
  assert.equal(ada.socket.closeCode, CloseCode.tryAgain);
  assert.equal(r.failures.length, 1);
  // The failed claim holds nothing: the next attempt is asked again.
  cluster.fail = false;
  const again = r.connect();
  const got = r.take(again.client, "Ada");
  await settle();
  assert.equal(got()?.name, "Ada");
  r.done();
});

Deno.test("Sessions in a cluster lets one of two simultaneous hellos for a name claim it", async () => {
  const cluster = new NameCluster();
  let answer!: (ok: boolean) => void;
  cluster.gate = new Promise((resolve) => answer = resolve);
  const r = rig(cluster);
  const first = r.connect();
  const second = r.connect();
  const a = r.take(first.client, "Ada");
  const b = r.take(second.client, "ada");
  assert.equal(second.socket.closeCode, CloseCode.nameTaken);
  answer(true);
  await settle();
  assert.equal(a()?.name, "Ada");
  assert.equal(b(), null);
  r.done();
});

Deno.test("Sessions closes the holders of names another instance took while this one was cut off", () => {
  const r = rig();
  const ada = r.connect();
  r.take(ada.client, "Ada");
  const bob = r.connect();
  r.take(bob.client, "Bob");
  r.sessions.lost(["ada"]);
  assert.equal(ada.socket.closeCode, CloseCode.nameTaken);
  assert.equal(bob.socket.closeCode, undefined);
  assert.equal(r.sessions.clientOf("ada"), null);
  r.done();
});

Deno.test("Sessions in a cluster keeps the cluster-wide claim when the token holder replaces a live connection", async () => {
  const cluster = new NameCluster();
  const r = rig(cluster);
  const old = r.connect();
  const first = r.take(old.client, "Ada");
  await settle();
  const token = first()!.token;
  const next = r.connect();
  const got = r.take(next.client, "Ada", { resume: token });
  await settle();
  assert.equal(old.socket.closeCode, CloseCode.replaced);
  assert.equal(got()?.token, "token-2", "a new token at the takeover");
  assert.notEqual(got()?.token, token);
  assert.deepEqual(cluster.released, [], "the name stays claimed: its holder is still here");
  assert.ok(cluster.held.has("ada"));
  next.client.close(1000, "bye", "client");
  assert.deepEqual(cluster.released, ["ada"]);
  r.done();
});

Deno.test("Sessions in a cluster gives the claim back when the client leaves while it is being made", async () => {
  for (const resuming of [false, true]) {
    const cluster = new NameCluster();
    const r = rig(cluster);
    let proof = {};
    if (resuming) {
      // A reserved name: its holder comes back with the token, then vanishes mid-claim.
      const before = r.connect();
      const granted = r.take(before.client, "Ada");
      await settle();
      proof = { resume: granted()!.token };
      before.client.close(1000, "bye", "client");
      cluster.released.length = 0;
    }
    let answer!: (ok: boolean) => void;
    cluster.gate = new Promise((resolve) => answer = resolve);
    const ada = r.connect();
    const got = r.take(ada.client, "Ada", proof);
    ada.client.close(1001, "gone", "client");
    answer(true);
    await settle();
    assert.equal(got(), null);
    assert.deepEqual(cluster.released, ["ada"], `resuming: ${resuming}`);
    r.done();
  }
});

Deno.test("Sessions in a cluster rotates the token when the holder takes its reservation back", async () => {
  const cluster = new NameCluster();
  const r = rig(cluster);
  const ada = r.connect();
  const first = r.take(ada.client, "Ada");
  await settle();
  const token = first()!.token;
  ada.client.close(1000, "bye", "client");
  const back = r.connect();
  const got = r.take(back.client, "Ada", { resume: token });
  await settle();
  assert.equal(got()?.token, "token-2");
  back.client.close(1000, "bye", "client");
  const stale = r.connect();
  const refused = r.take(stale.client, "Ada", { resume: token });
  await settle();
  assert.equal(refused(), null);
  assert.equal(stale.socket.closeCode, CloseCode.nameTaken);
  r.done();
});
