/**
 * The hub keeps the connected clients and their membership, and answers their commands. It is the
 * one owner of membership (hub/member.ts); names belong to `Sessions` (hub/sessions.ts).
 *
 * Its parts, each in hub/: the hello (greeting.ts); the message path with its resend guard
 * (messages.ts); the commit and fan-out engine (fanout.ts), which queues `say` for one group commit
 * and serves each room's log (room_log.ts) to its members within their send budgets; the join flow
 * (join.ts), which gives a joiner exactly one copy of every message; presence, per person in small
 * rooms and batched in large ones (presence.ts, over each room's roster.ts); history reads
 * (history.ts); direct messages (dm.ts); replies, refusals and slow-consumer evictions
 * (replies.ts); the rooms here (rooms.ts); and, with several instances, the cluster's side
 * (remote.ts), with gaps filled from the store (sequencer.ts), which stays the source of truth.
 *
 * Presence keeps one order everywhere: a member's record is written before its join line goes out
 * and removed before its leave line does, and its name is released cluster-wide only after both,
 * so a user who comes back on another instance is never sent away by a late line.
 */
import type { Client, ClientHandler, DisconnectReason } from "./client.ts";
import {
  CloseCode,
  type Command,
  type ErrorCode,
  type Hello,
  leftLine,
  presenceLine,
  typingLine,
} from "./protocol/protocol.ts";
import type { Store } from "./store/store.ts";
import { MAX_FRAME_OUT_BYTES } from "./hub/room.ts";
import { ROOM_WINDOW_BYTES } from "./ops/limits.ts";
import { FanOut, nextTurnOrLater } from "./hub/fanout.ts";
import { Presence } from "./hub/presence.ts";
import { Memberships } from "./hub/member.ts";
import { Sequencer } from "./hub/sequencer.ts";
import type { Cluster } from "./hub/cluster.ts";
import { Sessions } from "./hub/sessions.ts";
import type { AccountStore } from "./store/accounts.ts";
import { SqliteAccountStore } from "./store/sqlite_accounts.ts";
import { DatabaseSync } from "node:sqlite";
import { type HubObservers, type HubOptions, type HubStats, newHubStats } from "./hub/options.ts";
import { Replies } from "./hub/replies.ts";
import { Rooms } from "./hub/rooms.ts";
import { Remote } from "./hub/remote.ts";
import { Joins } from "./hub/join.ts";
import { DirectMessages } from "./hub/dm.ts";
import { Reads } from "./hub/reads.ts";
import { Messages } from "./hub/messages.ts";
import { Greeting } from "./hub/greeting.ts";
import { AccountCommands } from "./hub/account_commands.ts";
import { PasswordHasher } from "./auth/password.ts";
import { SignInLimiter } from "./auth/sign_in_limit.ts";
import { Retention } from "./hub/retention.ts";

export type { HubObservers, HubOptions, HubStats } from "./hub/options.ts";

/** Commands a client may send into rooms whose join is still in flight. */
export const MAX_HELD_COMMANDS = 256;
/** At most one typing event per client per room in this many ms is relayed. */
export const TYPING_INTERVAL_MS = 2000;
/** How long shutdown waits for closed sockets to finish their close handshake, in ms. */
export const SHUTDOWN_CLOSE_WAIT_MS = 1000;
/** How often the hub sweeps expired reservations and cids and applies retention, in ms. */
export const SWEEP_INTERVAL_MS = 10_000;

/** Maintains the set of clients, their names and rooms, and answers their commands. */
export class Hub implements ClientHandler {
  readonly stats: HubStats = newHubStats();

  #store: Store;
  #cluster: Cluster | null;
  #now: () => number;
  #observers: HubObservers;
  #clients = new Set<Client>();
  #memberships = new Memberships();
  #sessions: Sessions;
  #accounts: AccountStore;
  #rooms: Rooms;
  #fanout: FanOut;
  #sequencer: Sequencer;
  #messages: Messages;
  #greeting: Greeting;
  #replies: Replies;
  #remote: Remote | null = null;
  #joins: Joins;
  #presence: Presence;
  #dms: DirectMessages;
  #reads: Reads;
  #account: AccountCommands;
  /** Failed account-password sign-ins, per name key and per address (hub/sessions.ts). */
  #signIns: SignInLimiter;
  #retention: Retention;
  /** Set when shutdown begins: new messages are refused so the last commit can finish. */
  #draining = false;
  /** What each client's `leave` commands still tell the other instances; its name waits for it. */
  #leaving = new WeakMap<Client, Promise<void>>();
  #sweepTimer: ReturnType<typeof setInterval> | undefined;

  constructor(options: HubOptions) {
    const store = this.#store = options.store;
    const cluster = this.#cluster = options.cluster ?? null;
    const now = this.#now = options.now ?? Date.now;
    this.#observers = options.observers ?? {};
    const replies = this.#replies = new Replies(
      this.stats,
      this.#observers,
      () => this.#fanout.retryAfterMs,
    );
    const failed = (e: unknown) => replies.failed(e);
    const fanout = this.#fanout = new FanOut({
      store,
      stats: this.stats,
      now,
      schedule: options.schedule,
      timer: options.timer,
      flushSeconds: (s) => this.#observers.flushSeconds?.(s),
      commitSeconds: (s) => this.#observers.commitSeconds?.(s),
      hooks: {
        committed: (batch, stored) => this.#messages.committed(batch, stored),
        failed: (batch, error) => this.#messages.failed(batch, error),
        evict: (client, kind) => replies.evict(client, kind),
        current: (room) => this.#rooms.current(room),
      },
    });
    const rooms = this.#rooms = new Rooms(fanout, {
      maxFrameBytes: options.maxOutFrameBytes ?? MAX_FRAME_OUT_BYTES,
      windowBytes: options.roomWindowBytes ?? ROOM_WINDOW_BYTES,
    });
    const sequencer = this.#sequencer = new Sequencer({ store, fanout, failed });
    const accounts = this.#accounts = options.accounts ??
      new SqliteAccountStore(new DatabaseSync(":memory:"));
    const hasher = options.hasher ?? new PasswordHasher();
    const signIns = new SignInLimiter({ now });
    this.#signIns = signIns;
    const sessions = this.#sessions = new Sessions({
      accounts,
      hasher,
      signIns,
      cluster,
      now,
      registration: options.registration,
      accountTtlMs: options.accountTtlMs,
      failed,
    });
    const presence = this.#presence = new Presence({
      rooms,
      cluster,
      now,
      timer: options.timer ?? nextTurnOrLater,
    });
    // Each part takes what it needs from the same set of the hub's pieces.
    const parts = {
      presence,
      store,
      accounts,
      cluster,
      rooms,
      memberships: this.#memberships,
      sessions,
      fanout,
      sequencer,
      replies,
      stats: this.stats,
      observers: this.#observers,
      now,
      draining: () => this.#draining,
      alsoIn: (client: Client, room: string) => this.#alsoIn(client, room),
      remember: (client: Client, write: (a: AccountStore, id: string) => unknown) =>
        this.#remember(client, write),
    };
    const remote = this.#remote = cluster === null ? null : new Remote({ ...parts, cluster });
    this.#joins = new Joins({
      ...parts,
      remote,
      maxRoomsPerClient: options.maxRoomsPerClient,
      replayHeld: (client, room) => this.#replayHeld(client, room),
      resync: (room) => void this.resync(room),
    });
    this.#messages = new Messages(parts);
    const { auth, welcomeLimits, version } = options;
    this.#greeting = new Greeting({ ...parts, auth, welcomeLimits, version });
    this.#dms = new DirectMessages(parts);
    this.#reads = new Reads(parts);
    this.#account = new AccountCommands({ ...parts, hasher, signIns });
    this.#retention = new Retention(store, failed);
    // Last: what other instances sent meanwhile is told now, to a hub that is complete.
    if (remote !== null) cluster!.listen(remote);
  }

  /** Loads the resend guard from the store and starts the background sweep. */
  async start(): Promise<void> {
    await this.#messages.load();
    this.#sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
  }

  /** Every open connection, greeted or not. */
  get connections(): number {
    return this.#clients.size;
  }

  /** Rooms with members now. */
  get roomCount(): number {
    return this.#rooms.size;
  }

  /** The fullest send budget among clients now, in bytes; read at scrape time, off the hot path. */
  sendQueueBytesMax(): number {
    let max = 0;
    for (const c of this.#clients) max = Math.max(max, c.socket.bufferedAmount);
    return max;
  }

  /** The most UTF-8 bytes any room's log holds now; read at scrape time, off the hot path. */
  roomLogBytesMax(): number {
    return this.#rooms.logBytesMax();
  }

  /** Members of a room here by name, for tests. */
  members(room: string): string[] {
    return this.#joins.names(room);
  }

  /** False while other instances cannot be reached (history and sends then fail with unavailable). */
  get healthy(): boolean {
    return this.#cluster?.healthy ?? true;
  }

  /** True while the hub accepts connections. */
  get accepting(): boolean {
    return !this.#draining;
  }

  /** Fills a room from the store after the last seq its members got (see hub/sequencer.ts). */
  async resync(roomName: string): Promise<void> {
    const room = this.#rooms.get(roomName);
    if (room !== undefined) await this.#sequencer.resync(room);
  }

  /** Registers a new connection, before its hello. */
  add(client: Client): void {
    this.#clients.add(client);
  }

  // ---- ClientHandler ----

  hello(client: Client, hello: Hello): void {
    this.#greeting.hello(client, hello);
  }

  command(client: Client, command: Command): void {
    // A client may send into a room right after asking to join it (a reconnect resends its
    // outbox at once); hold those commands until the join answers, so they keep their order.
    const joining = "room" in command && command.type !== "join"
      ? this.#memberships.peek(client)?.joining
      : null;
    if (joining && "room" in command && joining.has(command.room)) {
      const held = this.#memberships.of(client).held ??= [];
      if (held.length >= MAX_HELD_COMMANDS) {
        const message = "Cannot wait for the join: too many commands";
        return this.#replies.refuse(client, "not_in_room", message, command.cid);
      }
      held.push(command);
      return;
    }
    switch (command.type) {
      case "say":
        return this.#messages.say(client, command.room, command.text, command.cid);
      case "join":
        return void this.#joins.join(client, command.room, command.since, command.cid);
      case "leave":
        return this.#leave(client, command.room, command.cid);
      case "rooms":
        return void this.#reads.rooms(client, command.cid);
      case "history":
        return void this.#reads.history(client, command);
      case "members":
        return this.#reads.members(client, command);
      case "dm":
        return this.#dms.send(client, command.to, command.text, command.cid);
      case "typing":
        return this.#typing(client, command.room, command.cid);
      case "read":
        return void this.#account.markRead(client, command.room, command.seq, command.cid);
      case "set_password":
        return void this.#account.setPassword(
          client,
          command.password,
          command.current,
          command.cid,
        );
      case "sessions":
        return void this.#account.list(client, command.cid);
      case "sign_out":
        return void this.#account.signOut(client, command, command.cid);
    }
  }

  rejected(_client: Client, code: ErrorCode): void {
    this.#replies.rejected(code);
  }

  /** A reply did not fit a client's budget (client.ts): evicted like any slow consumer. */
  slow(client: Client, kind: "over_budget"): void {
    this.#replies.evict(client, kind);
  }

  closed(client: Client, reason: DisconnectReason): void {
    if (!this.#clients.delete(client)) return;
    this.stats.disconnects.set(reason, (this.stats.disconnects.get(reason) ?? 0) + 1);
    const ts = this.#now();
    const released = this.#sessions.release(client, this.#leaving.get(client));
    if (client.name === null) return;
    this.#observers.event?.("info", "disconnect", {
      name: client.name,
      address: client.address,
      reason,
    });
    // A named client is closed with name_taken only when another instance took its name while
    // this one was cut off: the user is present there, so no one hears a leave.
    const quiet = reason === "name_taken";
    const member = this.#memberships.of(client);
    const gone: { room: string; line: string | null }[] = [];
    for (const name of member.rooms) {
      const room = this.#rooms.get(name);
      if (room === undefined) continue;
      room.removeMember(client);
      // The account is still here on another connection: for the room nobody left.
      if (this.#alsoIn(client, name)) {
        this.#rooms.dropIfUnused(room);
        continue;
      }
      const line = presenceLine("leave", name, client.name, ts);
      if (!quiet) this.#presence.departed(room, client.name, line);
      gone.push({ room: name, line: quiet ? null : line });
      this.#rooms.dropIfUnused(room);
    }
    member.rooms.clear();
    member.joinedAt.clear();
    if (gone.length > 0) this.#remote?.leaveAll(client, gone, released);
  }

  // ---- commands ----

  /** Runs the commands held for `roomName` while its join was in flight, in order. */
  #replayHeld(client: Client, roomName: string): void {
    const member = this.#memberships.of(client);
    const held = member.held;
    if (held === null || client.closed) return;
    const mine = held.filter((c) => "room" in c && c.room === roomName);
    if (mine.length === 0) return;
    const rest = held.filter((c) => !("room" in c && c.room === roomName));
    member.held = rest.length === 0 ? null : rest;
    for (const command of mine) this.command(client, command);
  }

  #leave(client: Client, roomName: string, cid: string | undefined): void {
    const member = this.#memberships.of(client);
    const room = this.#rooms.get(roomName);
    if (room === undefined || !member.rooms.has(roomName)) {
      return this.#replies.refuse(client, "not_in_room", "Cannot leave: not in that room", cid);
    }
    // Leaving is the account's: every connection of it in the room leaves with this one.
    for (const c of this.#sessions.clientsOf(client.key)) {
      const m = c === client ? member : this.#memberships.peek(c);
      if (m === undefined || !m.rooms.has(roomName)) continue;
      room.removeMember(c);
      m.rooms.delete(roomName);
      m.joinedAt.delete(roomName);
      m.lastTyping?.delete(roomName);
      this.#replies.send(c, leftLine(roomName));
    }
    this.#remember(client, (accounts, id) => accounts.leaveRoom(id, roomName));
    const line = presenceLine("leave", roomName, client.name!, this.#now());
    this.#presence.departed(room, client.name!, line);
    this.#rooms.dropIfUnused(room);
    if (this.#remote !== null) {
      const told = this.#remote.track(this.#remote.leave(roomName, client.name!, line));
      const earlier = this.#leaving.get(client);
      this.#leaving.set(client, earlier === undefined ? told : earlier.then(() => told));
    }
  }

  /** True when another connection of `client`'s account is a member of `roomName` here. */
  #alsoIn(client: Client, roomName: string): boolean {
    for (const c of this.#sessions.clientsOf(client.key)) {
      if (c !== client && this.#memberships.peek(c)?.rooms.has(roomName)) return true;
    }
    return false;
  }

  /** Writes something about `client`'s account; a failure is logged, the command goes on. */
  #remember(
    client: Client,
    write: (accounts: AccountStore, accountId: string) => unknown,
  ): void {
    const id = this.#sessions.accountOf(client);
    if (id === undefined) return;
    try {
      const done = write(this.#accounts, id);
      if (done instanceof Promise) done.catch((e) => this.#replies.failed(e));
    } catch (e) {
      this.#replies.failed(e);
    }
  }

  #typing(client: Client, roomName: string, cid: string | undefined): void {
    const member = this.#memberships.of(client);
    const room = this.#rooms.get(roomName);
    if (room === undefined || !member.rooms.has(roomName)) {
      return this.#replies.refuse(client, "not_in_room", "Cannot type: join the room first", cid);
    }
    const now = this.#now();
    const typed = member.lastTyping ??= new Map();
    const last = typed.get(roomName);
    if (last !== undefined && now - last < TYPING_INTERVAL_MS) return;
    typed.set(roomName, now);
    const line = typingLine(roomName, client.name!);
    this.#rooms.emit(room, line, client);
    this.#cluster?.publishRoom(room.name, line);
  }

  // ---- upkeep ----

  /** Frees expired name reservations and resend-guard entries, and applies retention. */
  sweep(): void {
    const now = this.#now();
    this.#sessions.sweep();
    this.#greeting.sweep();
    this.#signIns.sweep();
    this.#messages.expire(now);
    this.#retention.run(now);
  }

  /**
   * Finishes the current flush and commit, closes every socket with 1001, then closes the store.
   * Safe to call twice.
   */
  async shutdown(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    this.#retention.stop();
    // Commit what was accepted, so every echo the clients already saw is durable and the last
    // batch is acknowledged before the sockets close.
    await this.#fanout.close();
    clearInterval(this.#sweepTimer);
    const closing = [...this.#clients];
    for (const client of closing) {
      client.close(CloseCode.shutdown, "server shutting down", "shutdown");
    }
    // The other instances hear these clients leave only once their names are released; the links
    // to Redis close after that (bounded by the Redis command timeout), so no leave is lost.
    await this.#remote?.settled();
    await Promise.all([this.#store.close(), this.#cluster?.close(), this.#accounts.close()]);
    // Give the close frames time to leave: the HTTP server's own shutdown would otherwise abort
    // the sockets first, with its own reason, and drop the last acknowledgements queued above.
    const deadline = performance.now() + SHUTDOWN_CLOSE_WAIT_MS;
    while (
      closing.some((c) => c.socket.readyState !== WebSocket.CLOSED) && performance.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
