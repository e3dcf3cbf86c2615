/**
 * The hub keeps the connected clients, the rooms and their members, and fans messages out. It is
 * the one owner of membership (hub/member.ts); names belong to `Sessions` (hub/sessions.ts).
 *
 * Fan-out: the commit and fan-out engine (hub/fanout.ts) queues `say` for one group commit and
 * serves each room's log (hub/room_log.ts) to its members within their send budgets. A member is a
 * slow consumer (4008) only when it falls the room window behind or its socket drains nothing for
 * STALL_TIMEOUT_MS, never because the server itself was busy; input is bounded per sender and in
 * total, past which `say` is refused with `rate_limited` and a `retryAfterMs` hint (not counted
 * toward 4029).
 *
 * Joins see exactly one copy of every message: `joined` carries history up to the room's `latest`
 * seq at the instant the client becomes a member, and every later commit reaches it live.
 *
 * With a `Cluster` (several instances on Redis), committed lines are also published with their seq;
 * lines from other instances join the same logs in seq order, and a gap is filled from the store
 * (hub/sequencer.ts), which stays the source of truth. Names and presence are claimed cluster-wide.
 * Presence keeps one order everywhere: a member's record is written before its join line goes out
 * and removed before its leave line does, and its name is released cluster-wide only after both,
 * so a user who comes back on another instance is never sent away by a late line.
 */
import { Client, type ClientHandler, type DisconnectReason, utf8Length } from "./client.ts";
import {
  type ChatMessage,
  CloseCode,
  type Command,
  DEFAULT_HISTORY_LIMIT,
  dmLine,
  type ErrorCode,
  errorLine,
  type Hello,
  historyLine,
  joinedLine,
  leftLine,
  messageLine,
  nameKey,
  presenceLine,
  RESEND_WINDOW_MS,
  roomsLine,
  typingLine,
  welcomeLine,
} from "./protocol/protocol.ts";
import type { NewMessage, ReadRange, Store } from "./store/store.ts";
import { MAX_FRAME_OUT_BYTES, Room } from "./hub/room.ts";
import { ROOM_WINDOW_BYTES } from "./ops/limits.ts";
import type { SlowKind } from "./hub/room_log.ts";
import { FanOut, type Pending, PENDING_LINE_BYTES } from "./hub/fanout.ts";
import { readLines } from "./hub/history.ts";
import { Member } from "./hub/member.ts";
import { Sequencer } from "./hub/sequencer.ts";
import type { Authenticator, AuthResult } from "./auth/auth.ts";
import type { Cluster, ClusterListener } from "./hub/cluster.ts";
import { type Session, Sessions } from "./hub/sessions.ts";
import { ResendGuard } from "./hub/resend_guard.ts";

/** Most messages one `joined` reply carries when the client asks with `since`. */
export const MAX_JOIN_SINCE_MESSAGES = 1000;
/** Commands a client may send into rooms whose join is still in flight. */
export const MAX_HELD_COMMANDS = 256;
/** At most one typing event per client per room in this many ms is relayed. */
export const TYPING_INTERVAL_MS = 2000;
/** How long shutdown waits for closed sockets to finish their close handshake, in ms. */
export const SHUTDOWN_CLOSE_WAIT_MS = 1000;
/** How often the hub sweeps expired reservations and cids and applies retention, in ms. */
export const SWEEP_INTERVAL_MS = 10_000;

/** Counters the hub keeps; metrics read them at scrape time. Plain numbers: the hot path only adds. */
export interface HubStats {
  messagesReceived: number;
  /** Messages delivered to clients, counting each recipient (a frame of k messages to n members adds k·n). */
  messagesDelivered: number;
  framesSent: number;
  disconnects: Map<DisconnectReason, number>;
  rejected: Map<ErrorCode, number>;
  /** Slow consumers evicted (4008), by the rule that found them. */
  slowConsumers: Map<SlowKind, number>;
  /** `say` refused because the commit queue was full (also counted in `rejected`). */
  busyRefusals: number;
}

/** Observers for timings; each is optional. */
export interface HubObservers {
  /** One flush (commit excluded) took this long, in seconds. */
  flushSeconds?(seconds: number): void;
  /** One store commit took this long, in seconds. */
  commitSeconds?(seconds: number): void;
  /** A named event for the log; never carries message text. */
  event?(
    level: "info" | "warn" | "error",
    event: string,
    fields: Record<string, string | number>,
  ): void;
}

/** Options for {@linkcode Hub}. */
export interface HubOptions {
  store: Store;
  maxRoomsPerClient: number;
  /** Extra limits reported in the welcome. */
  welcomeLimits: Record<string, unknown>;
  version: string;
  /** @default Date.now */
  now?: () => number;
  /**
   * Runs `fn` after `delayMs` (0: the next macrotask). Tests pass one that runs on demand.
   * @default setImmediate for 0, setTimeout otherwise
   */
  schedule?: (fn: () => void, delayMs: number) => void;
  /**
   * Largest outbound room frame, in UTF-8 bytes. Keep it well under the per-client send
   * budget: a frame must fit beside whatever a healthy client still has in flight.
   * @default MAX_FRAME_OUT_BYTES
   */
  maxOutFrameBytes?: number;
  /**
   * How far, in UTF-8 bytes, a member may fall behind its room before it is evicted (4008).
   * @default ROOM_WINDOW_BYTES
   */
  roomWindowBytes?: number;
  /**
   * Runs `fn` after `delayMs` for the drain poll, returning a cancel function. Tests pass one that
   * runs on demand. @default setTimeout
   */
  timer?: (fn: () => void, delayMs: number) => () => void;
  /** Makes a resume token. @default 256 random bits, base64url */
  makeToken?: () => string;
  observers?: HubObservers;
  /** Checks credentials in the hello. @default every valid name is let in */
  auth?: Authenticator;
  /** Other instances sharing the rooms. @default none: this process is the whole chat */
  cluster?: Cluster;
}

/** The close reason a slow consumer hears, by how it was found. */
const SLOW_REASONS: Record<SlowKind, string> = {
  behind: "slow consumer: fell behind",
  stalled: "slow consumer: stopped reading",
  over_budget: "slow consumer: send queue full",
};

/** Maintains the set of clients, their names and rooms, and broadcasts messages to room members. */
export class Hub implements ClientHandler, ClusterListener {
  readonly stats: HubStats = {
    messagesReceived: 0,
    messagesDelivered: 0,
    framesSent: 0,
    disconnects: new Map(),
    rejected: new Map(),
    slowConsumers: new Map(),
    busyRefusals: 0,
  };

  #store: Store;
  #cluster: Cluster | null;
  #options: HubOptions;
  #now: () => number;
  #maxOutFrameBytes: number;
  #observers: HubObservers;
  #clients = new Set<Client>();
  /** Each connection's membership, owned here; a connection itself keeps none. */
  #memberships = new WeakMap<Client, Member>();
  #sessions: Sessions;
  #rooms = new Map<string, Room>();
  #fanout: FanOut;
  #sequencer: Sequencer;
  #resendGuard = new ResendGuard();
  /** Set when shutdown begins: new messages are refused so the last commit can finish. */
  #draining = false;
  #pruning = false;
  /** What each client's `leave` commands still tell the other instances; its name waits for it. */
  #leaving = new WeakMap<Client, Promise<void>>();
  /** Leaves still being told to the other instances (see `#tellOthers`); shutdown waits for them. */
  #telling = new Set<Promise<void>>();
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #roomWindowBytes: number;

  constructor(options: HubOptions) {
    this.#store = options.store;
    this.#cluster = options.cluster ?? null;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#maxOutFrameBytes = options.maxOutFrameBytes ?? MAX_FRAME_OUT_BYTES;
    this.#roomWindowBytes = options.roomWindowBytes ?? ROOM_WINDOW_BYTES;
    this.#observers = options.observers ?? {};
    this.#fanout = new FanOut({
      store: this.#store,
      stats: this.stats,
      now: this.#now,
      schedule: options.schedule,
      timer: options.timer,
      flushSeconds: (s) => this.#observers.flushSeconds?.(s),
      commitSeconds: (s) => this.#observers.commitSeconds?.(s),
      hooks: {
        committed: (batch, stored) => this.#delivered(batch, stored),
        failed: (batch, error) => this.#commitFailed(batch, error),
        evict: (client, kind) => this.#evictSlow(client, kind),
        current: (room) => this.#rooms.get(room.name) === room,
      },
    });
    this.#sequencer = new Sequencer({
      store: this.#store,
      fanout: this.#fanout,
      failed: (e) => this.#storeFailed(e),
    });
    this.#sessions = new Sessions({
      cluster: this.#cluster,
      now: this.#now,
      makeToken: options.makeToken,
      failed: (e) => this.#storeFailed(e),
    });
    // Last: what other instances sent meanwhile is told now, to a hub that is complete.
    this.#cluster?.listen(this);
  }

  /** Loads the resend guard from the store and starts the background sweep. */
  async start(): Promise<void> {
    for (const m of await this.#store.recentWithCid(this.#now() - RESEND_WINDOW_MS)) {
      const key = ResendGuard.keyOf(m);
      if (key !== undefined) this.#resendGuard.accepted(key, m);
    }
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
    let max = 0;
    for (const room of this.#rooms.values()) max = Math.max(max, room.log.heldBytes);
    return max;
  }

  /** Members of a room by name, for tests and `joined`. */
  members(room: string): string[] {
    return [...(this.#rooms.get(room)?.members ?? [])].map((c) => c.name!);
  }

  /** False while other instances cannot be reached (history and sends then fail with unavailable). */
  get healthy(): boolean {
    return this.#cluster?.healthy ?? true;
  }

  /** True while the hub accepts connections. */
  get accepting(): boolean {
    return !this.#draining;
  }

  /** The membership record of `client`, made on first use. */
  #memberOf(client: Client): Member {
    let m = this.#memberships.get(client);
    if (m === undefined) this.#memberships.set(client, m = new Member());
    return m;
  }

  /** Registers a new connection, before its hello. */
  add(client: Client): void {
    this.#clients.add(client);
  }

  // ---- ClientHandler ----

  hello(client: Client, hello: Hello): void {
    if (this.#draining) return client.close(CloseCode.shutdown, "server shutting down", "shutdown");
    const checked: AuthResult | Promise<AuthResult> = this.#options.auth?.(hello) ??
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
    if (this.#draining) return client.close(CloseCode.shutdown, "server shutting down", "shutdown");
    if (!auth.ok) {
      this.#observers.event?.("warn", "unauthorized", {
        address: client.address,
        reason: auth.reason,
      });
      // The reason says what is missing (never the secret), so a client knows what to ask for.
      return client.close(CloseCode.unauthorized, auth.reason, "unauthorized");
    }
    this.#sessions.take(
      client,
      auth.name,
      { resume: hello.resume, verified: auth.verified },
      (session) => this.#welcome(client, session, auth.expiresAt),
    );
  }

  /** Sends the welcome to a client that has its name, and lets its commands in. */
  #welcome(client: Client, session: Session, expiresAt?: number): void {
    this.#send(
      client,
      welcomeLine(session.name, session.token, this.#options.welcomeLimits, this.#options.version),
    );
    if (expiresAt !== undefined) client.expireAt(expiresAt);
    this.#observers.event?.("info", "hello", { name: session.name, address: client.address });
    client.ready();
  }

  command(client: Client, command: Command): void {
    // A client may send into a room right after asking to join it (a reconnect resends its
    // outbox at once); hold those commands until the join answers, so they keep their order.
    const joining = "room" in command && command.type !== "join"
      ? this.#memberships.get(client)?.joining
      : null;
    if (joining && "room" in command && joining.has(command.room)) {
      const held = this.#memberOf(client).held ??= [];
      if (held.length >= MAX_HELD_COMMANDS) {
        return this.#refuse(
          client,
          "not_in_room",
          "Cannot wait for the join: too many commands",
          command.cid,
        );
      }
      held.push(command);
      return;
    }
    switch (command.type) {
      case "say":
        return this.#say(client, command.room, command.text, command.cid);
      case "join":
        return void this.#join(client, command.room, command.since, command.cid);
      case "leave":
        return this.#leave(client, command.room, command.cid);
      case "rooms":
        return void this.#rooms_(client, command.cid);
      case "history":
        return void this.#history(client, command);
      case "dm":
        return this.#dm(client, command.to, command.text, command.cid);
      case "typing":
        return this.#typing(client, command.room, command.cid);
    }
  }

  rejected(_client: Client, code: ErrorCode): void {
    this.stats.rejected.set(code, (this.stats.rejected.get(code) ?? 0) + 1);
  }

  closed(client: Client, reason: DisconnectReason): void {
    if (!this.#clients.delete(client)) return;
    this.stats.disconnects.set(reason, (this.stats.disconnects.get(reason) ?? 0) + 1);
    const ts = this.#now();
    const released = this.#sessions.release(client, this.#leaving.get(client));
    if (client.name !== null) {
      this.#observers.event?.("info", "disconnect", {
        name: client.name,
        address: client.address,
        reason,
      });
    }
    // A named client is closed with name_taken only when another instance took its name while
    // this one was cut off: the user is present there, so no one hears a leave.
    const quiet = reason === "name_taken" && client.name !== null;
    const member = this.#memberOf(client);
    const gone: { room: string; line: string }[] = [];
    for (const name of member.rooms) {
      const room = this.#rooms.get(name);
      if (room === undefined) continue;
      room.members.delete(client);
      room.log.forget(client);
      const line = presenceLine("leave", name, client.name!, ts);
      if (!quiet) this.#emit(room, line);
      gone.push({ room: name, line });
      this.#dropIfEmpty(room);
    }
    member.rooms.clear();
    member.joinedAt.clear();
    if (this.#cluster !== null && gone.length > 0) {
      // Other instances hear the leave only once the name is free there: a client that reconnects
      // on seeing it must find its name available.
      const tell = () =>
        Promise.all(
          gone.map((g) => this.#leaveCluster(g.room, client.name!, quiet ? null : g.line)),
        );
      this.#tellOthers(released === undefined ? tell() : released.then(tell));
    }
  }

  /**
   * Tells the other instances that `name` left `room`: the presence record goes first, then the
   * line, so an instance that reads the members meanwhile and misses the line never lists the
   * leaver. The subscription ends with the last local member, unless a join is on its way.
   */
  async #leaveCluster(roomName: string, name: string, line: string | null): Promise<void> {
    // The user may be back already on a new connection (a resume) that joined or is joining this
    // room: for the others nothing changed, and removing the record would remove the new one too.
    const holder = this.#sessions.clientOf(nameKey(name));
    const member = holder === null ? undefined : this.#memberships.get(holder);
    if (member !== undefined && (member.rooms.has(roomName) || member.joining?.has(roomName))) {
      return;
    }
    const room = this.#rooms.get(roomName);
    const last = room === undefined || room.unused;
    await this.#cluster!.exitRoom(roomName, name, last);
    if (line !== null) this.#cluster!.publishPresence(roomName, line);
  }

  /** Keeps track of work that tells other instances something, so shutdown can wait for it. */
  #tellOthers(work: Promise<unknown>): void {
    // The cluster's calls never reject; should one, it is logged rather than left unhandled.
    const told = work.then(() => {}, (e) => this.#storeFailed(e));
    this.#telling.add(told);
    void told.finally(() => this.#telling.delete(told));
  }

  // ---- commands ----

  #say(client: Client, roomName: string, text: string, cid: string | undefined): void {
    if (!this.#memberOf(client).rooms.has(roomName)) {
      return this.#refuse(client, "not_in_room", "Cannot say: join the room first", cid);
    }
    if (this.#draining) {
      return this.#refuse(client, "unavailable", "Cannot say: the server is shutting down", cid);
    }
    this.stats.messagesReceived++;
    let key: string | undefined;
    if (cid !== undefined) {
      key = ResendGuard.key(roomName, client.key, cid);
      const earlier = this.#resendGuard.original(key, this.#now());
      // A resend of an accepted message: the sender alone gets the original back.
      if (earlier !== undefined) return this.#send(client, messageLine(earlier));
      // Already in the batch being committed: its echo will answer this resend too.
      if (this.#resendGuard.inFlight(key)) return;
    }
    const message: NewMessage = { room: roomName, from: client.name!, text, ts: this.#now() };
    if (cid !== undefined) message.cid = cid;
    const bytes = utf8Length(text) + PENDING_LINE_BYTES;
    if (!this.#fanout.offer({ message, sender: client, guardKey: key, bytes })) {
      return this.#refuseSaturated(client, cid);
    }
    if (key !== undefined) this.#resendGuard.begin(key);
  }

  async #join(
    client: Client,
    roomName: string,
    since: number | undefined,
    cid: string | undefined,
  ): Promise<void> {
    const member = this.#memberOf(client);
    const already = member.rooms.has(roomName);
    if (!already && member.joining?.has(roomName)) return; // the first join's reply answers both
    const inFlight = member.joining?.size ?? 0;
    if (
      !already && member.rooms.size + inFlight >= this.#options.maxRoomsPerClient
    ) {
      return this.#refuse(
        client,
        "too_many_rooms",
        `Cannot join: at most ${this.#options.maxRoomsPerClient} rooms`,
        cid,
      );
    }
    let room = this.#rooms.get(roomName);
    if (room === undefined) {
      this.#rooms.set(
        roomName,
        room = new Room(roomName, {
          maxFrameBytes: this.#maxOutFrameBytes,
          windowBytes: this.#roomWindowBytes,
        }),
      );
    }
    room.joinStarted();
    const joining = member.joining ??= new Set();
    joining.add(roomName);
    // In a cluster, subscribe before reading so no line falls between the history and the feed.
    let entered = false;
    try {
      if (this.#cluster !== null && !already) {
        // Marked first: a failed enter may have recorded part of itself, and must be undone.
        entered = true;
        await this.#cluster.enterRoom(roomName, client.name!);
      }
      if (!room.ready) {
        const latest = (await this.#store.bounds(roomName)).latest;
        room.readyAt(latest);
      }
      const range: ReadRange = since === undefined
        ? { limit: DEFAULT_HISTORY_LIMIT, newest: true }
        : { after: since, limit: MAX_JOIN_SINCE_MESSAGES + 1 };
      const page = await readLines(this.#store, room, range);
      const members = this.#cluster === null ? null : await this.#cluster.members(roomName);
      if (client.closed) return;
      let more = false;
      if (page.lines.length > MAX_JOIN_SINCE_MESSAGES) {
        page.lines.length = MAX_JOIN_SINCE_MESSAGES;
        more = true;
      }
      // Lines committed since the page was read reached only the members of that moment.
      if (!already && !more && room.latest > page.upTo) {
        const missed = room.cached(
          page.upTo,
          Number.MAX_SAFE_INTEGER,
          room.latest - page.upTo,
          false,
        );
        if (missed === null) more = true; // not cached: the client pages forward for them
        else page.lines.push(...missed);
      }
      // Everything committed up to room.latest is in the history (or, with more, reachable by
      // paging); everything committed from now on reaches the client live.
      if (!already) {
        // Events queued before this instant belong to the members who were there; send them first
        // so the joiner never sees, for example, a join that its `members` list already includes.
        if (room.log.unserved) this.#fanout.serveNow(room);
        room.members.add(client);
        member.rooms.add(roomName);
        member.joinedAt.set(roomName, room.latest);
      }
      entered = false; // the membership is now the client's; leaving undoes it
      this.#send(
        client,
        joinedLine(roomName, members ?? this.members(roomName), page.lines, room.latest, {
          more,
          truncated: since !== undefined && page.truncated,
        }),
      );
      if (!already) {
        const line = presenceLine("join", roomName, client.name!, this.#now());
        this.#emit(room, line, client);
        this.#cluster?.publishPresence(roomName, line);
        this.#observers.event?.("info", "join", { name: client.name!, room: roomName });
      }
      if (room.pendingSeq > room.latest) void this.resync(roomName);
    } catch (e) {
      this.#storeFailed(e);
      this.#refuse(client, "unavailable", "Cannot join: history is unavailable, try again", cid);
    } finally {
      joining.delete(roomName);
      if (joining.size === 0 && member.joining === joining) {
        member.joining = null;
      }
      room.joinEnded();
      this.#replayHeld(client, roomName);
      if (entered) {
        this.#tellOthers(this.#cluster!.exitRoom(roomName, client.name!, room.unused));
      }
      this.#dropIfEmpty(room);
    }
  }

  /** Runs the commands held for `roomName` while its join was in flight, in order. */
  #replayHeld(client: Client, roomName: string): void {
    const member = this.#memberOf(client);
    const held = member.held;
    if (held === null || client.closed) return;
    const mine = held.filter((c) => "room" in c && c.room === roomName);
    if (mine.length === 0) return;
    const rest = held.filter((c) => !("room" in c && c.room === roomName));
    member.held = rest.length === 0 ? null : rest;
    for (const command of mine) this.command(client, command);
  }

  #leave(client: Client, roomName: string, cid: string | undefined): void {
    const member = this.#memberOf(client);
    const room = this.#rooms.get(roomName);
    if (room === undefined || !member.rooms.has(roomName)) {
      return this.#refuse(client, "not_in_room", "Cannot leave: not in that room", cid);
    }
    room.members.delete(client);
    room.log.forget(client);
    member.rooms.delete(roomName);
    member.joinedAt.delete(roomName);
    member.lastTyping?.delete(roomName);
    this.#send(client, leftLine(roomName));
    const line = presenceLine("leave", roomName, client.name!, this.#now());
    this.#emit(room, line);
    this.#dropIfEmpty(room);
    if (this.#cluster !== null) {
      const told = this.#leaveCluster(roomName, client.name!, line);
      this.#tellOthers(told);
      const earlier = this.#leaving.get(client);
      this.#leaving.set(client, earlier === undefined ? told : earlier.then(() => told));
    }
  }

  async #history(
    client: Client,
    command: { room: string; before?: number; after?: number; limit: number; cid?: string },
  ): Promise<void> {
    const room = this.#rooms.get(command.room);
    if (room === undefined || !this.#memberOf(client).rooms.has(command.room)) {
      return this.#refuse(
        client,
        "not_in_room",
        "Cannot read history: join the room first",
        command.cid,
      );
    }
    const range: ReadRange = { limit: command.limit };
    if (command.after !== undefined) range.after = command.after;
    else if (command.before !== undefined) range.before = command.before;
    else range.newest = true;
    try {
      const page = await readLines(this.#store, room, range);
      if (client.closed) return;
      this.#send(
        client,
        historyLine(command.room, page.lines, page.truncated),
      );
    } catch (e) {
      this.#storeFailed(e);
      this.#refuse(
        client,
        "unavailable",
        "Cannot read history: the store is unavailable, try again",
        command.cid,
      );
    }
  }

  #dm(client: Client, to: string, text: string, cid: string | undefined): void {
    const key = nameKey(to);
    const target = this.#sessions.clientOf(key);
    if (target === null) {
      if (this.#cluster !== null) return void this.#dmElsewhere(client, key, to, text, cid);
      return this.#refuse(client, "unknown_user", `Cannot dm: ${to} is not online`, cid);
    }
    this.stats.messagesReceived++;
    const line = dmLine(client.name!, target.name!, text, this.#now(), cid);
    this.#send(target, line);
    if (target !== client) this.#send(client, line);
  }

  /** A DM to a user on another instance: found through the cluster, carried by the bus. */
  async #dmElsewhere(
    client: Client,
    key: string,
    to: string,
    text: string,
    cid: string | undefined,
  ) {
    let owner: string | null;
    try {
      owner = await this.#cluster!.ownerOf(key);
    } catch (e) {
      this.#storeFailed(e);
      return this.#refuse(client, "unavailable", "Cannot dm: the cluster is unavailable", cid);
    }
    if (owner === null) {
      return this.#refuse(client, "unknown_user", `Cannot dm: ${to} is not online`, cid);
    }
    if (client.closed) return;
    this.stats.messagesReceived++;
    const line = dmLine(client.name!, owner, text, this.#now(), cid);
    this.#cluster!.publishDirect(key, line);
    this.#send(client, line);
  }

  async #rooms_(client: Client, cid: string | undefined): Promise<void> {
    if (this.#cluster === null) return this.#send(client, this.#roomsLine());
    try {
      const rooms = (await this.#cluster.rooms()).sort((a, b) => a.room < b.room ? -1 : 1);
      this.#send(client, roomsLine(rooms));
    } catch (e) {
      this.#storeFailed(e);
      this.#refuse(client, "unavailable", "Cannot list rooms: the cluster is unavailable", cid);
    }
  }

  // ---- ClusterListener: what other instances send ----

  remoteRoomLine(roomName: string, line: string, seq?: number): void {
    const room = this.#rooms.get(roomName);
    if (room === undefined) return;
    if (seq === undefined) return this.#emit(room, line);
    let m: ChatMessage;
    try {
      m = JSON.parse(line);
    } catch {
      return;
    }
    if (this.#sequencer.deliver(room, m, line)) this.#fanout.schedule();
  }

  remoteDirect(key: string, line: string): void {
    const client = this.#sessions.clientOf(key);
    if (client !== null) this.#send(client, line);
  }

  namesLost(keys: string[]): void {
    this.#sessions.lost(keys);
  }

  membersBack(members: { room: string; name: string }[]): void {
    this.#announce("join", members);
  }

  membersGone(gone: { room: string; name: string }[]): void {
    // Only the instance whose sweep removed them hears of them: it tells every other one.
    this.#announce("leave", gone);
  }

  /** Tells this instance's members and every other instance that members came or went. */
  #announce(type: "join" | "leave", members: { room: string; name: string }[]): void {
    const ts = this.#now();
    for (const { room: roomName, name } of members) {
      const line = presenceLine(type, roomName, name, ts);
      const room = this.#rooms.get(roomName);
      if (room !== undefined) this.#emit(room, line);
      this.#cluster?.publishPresence(roomName, line);
    }
  }

  /** Fills a room from the store after the last seq its members got (see hub/sequencer.ts). */
  async resync(roomName: string): Promise<void> {
    const room = this.#rooms.get(roomName);
    if (room !== undefined) await this.#sequencer.resync(room);
  }

  #typing(client: Client, roomName: string, cid: string | undefined): void {
    const member = this.#memberOf(client);
    const room = this.#rooms.get(roomName);
    if (room === undefined || !member.rooms.has(roomName)) {
      return this.#refuse(client, "not_in_room", "Cannot type: join the room first", cid);
    }
    const now = this.#now();
    const typed = member.lastTyping ??= new Map();
    const last = typed.get(roomName);
    if (last !== undefined && now - last < TYPING_INTERVAL_MS) return;
    typed.set(roomName, now);
    this.#broadcast(room, typingLine(roomName, client.name!), client);
  }

  // ---- fan-out ----

  /** Queues a line this instance produced for its members and, in a cluster, the other instances. */
  #broadcast(room: Room, line: string, except?: Client): void {
    this.#emit(room, line, except);
    this.#cluster?.publishRoom(room.name, line);
  }

  /** Appends a line to a room's log for its members here (except `except`) and schedules a flush. */
  #emit(room: Room, line: string, except?: Client): void {
    if (room.members.size === 0) return;
    room.log.append(line, except);
    this.#fanout.mark(room);
    this.#fanout.schedule();
  }

  /** Appends committed messages to their rooms' logs and echoes them (the engine then serves). */
  #delivered(batch: Pending[], stored: ChatMessage[]): void {
    for (let i = 0; i < batch.length; i++) {
      const m = stored[i];
      const { sender, guardKey: key, bytes } = batch[i];
      const line = messageLine(m);
      // The text was measured when it was queued (a resend the store recognised has the same).
      if (key !== undefined) this.#resendGuard.accepted(key, m, bytes - PENDING_LINE_BYTES);
      this.#cluster?.publishRoom(m.room, line, m.seq);
      const room = this.#rooms.get(m.room);
      const reaches = room !== undefined && this.#sequencer.deliver(room, m, line);
      // The echo is the acknowledgement. A member gets it with the room unless the message predates
      // its membership (a resend the store recognised as an old message); a sender who left the
      // room before the commit gets it directly. A member whose message a resync already delivered
      // (another instance's line overtook this commit) must not get it twice.
      const since = room?.members.has(sender)
        ? this.#memberOf(sender).joinedAt.get(m.room)
        : undefined;
      if (since === undefined || (!reaches && m.seq <= since)) this.#send(sender, line);
    }
  }

  #commitFailed(batch: Pending[], error: unknown): void {
    this.#storeFailed(error);
    for (const p of batch) {
      if (p.guardKey !== undefined) this.#resendGuard.failed(p.guardKey);
      this.#refuse(
        p.sender,
        "unavailable",
        "Cannot say: the message could not be stored, send it again",
        p.message.cid,
      );
    }
  }

  /**
   * Sends a direct reply (not a room line) to one client; evicts it if its socket already holds
   * more than its hard limit.
   */
  #send(client: Client, frame: string): void {
    if (client.trySend(frame)) {
      this.stats.framesSent++;
      this.stats.messagesDelivered++;
    } else this.#evictSlow(client, "over_budget");
  }

  /** A reply did not fit a client's budget (client.ts): evicted like any slow consumer. */
  slow(client: Client, kind: "over_budget"): void {
    this.#evictSlow(client, kind);
  }

  #evictSlow(client: Client, kind: SlowKind): void {
    if (client.closed) return;
    this.stats.slowConsumers.set(kind, (this.stats.slowConsumers.get(kind) ?? 0) + 1);
    this.#observers.event?.("warn", "slow_consumer", {
      name: client.name ?? "",
      address: client.address,
      reason: kind,
    });
    client.close(CloseCode.slowConsumer, SLOW_REASONS[kind], "slow_consumer");
  }

  /**
   * Refuses a `say` because the commit queue is full: `rate_limited` with a hint of when to resend.
   * Not counted toward the flood window: the server's own saturation is not the client's fault,
   * and a client that ignores the hint is bounded by its socket (its replies fill its budget).
   */
  #refuseSaturated(client: Client, cid: string | undefined): void {
    this.rejected(client, "rate_limited");
    this.stats.busyRefusals++;
    const retryAfterMs = this.#fanout.retryAfterMs;
    this.#send(
      client,
      errorLine(
        "rate_limited",
        "Cannot say: the server is busy, send it again shortly",
        cid,
        retryAfterMs,
      ),
    );
  }

  #refuse(client: Client, code: ErrorCode, message: string, cid?: string): void {
    this.rejected(client, code);
    this.#send(client, errorLine(code, message, cid));
    client.countRefusal(code); // the hub's refusals count toward the flood window too
  }

  #roomsLine(): string {
    const rooms = [...this.#rooms.values()]
      .filter((r) => r.members.size > 0)
      .map((r) => ({ room: r.name, members: r.members.size }))
      .sort((a, b) => a.room < b.room ? -1 : 1);
    return roomsLine(rooms);
  }

  #dropIfEmpty(room: Room): void {
    if (room.unused && this.#rooms.get(room.name) === room) {
      this.#rooms.delete(room.name);
      this.#fanout.forget(room);
    }
  }

  #storeFailed(error: unknown): void {
    this.#observers.event?.("error", "store_failed", { error: String(error).slice(0, 200) });
  }

  /** Frees expired name reservations and resend-guard entries, and applies retention. */
  sweep(): void {
    const now = this.#now();
    this.#sessions.sweep();
    this.#resendGuard.expire(now);
    if (!this.#pruning) void this.#prune(now);
  }

  /**
   * Applies retention in the store's bounded chunks, yielding to the event loop between chunks so
   * fan-out never waits behind a large deletion.
   */
  async #prune(now: number): Promise<void> {
    this.#pruning = true;
    try {
      while (!this.#draining && (await this.#store.prune(now)) > 0) {
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } catch (e) {
      this.#storeFailed(e);
    } finally {
      this.#pruning = false;
    }
  }

  /**
   * Finishes the current flush and commit, closes every socket with 1001, then closes the store.
   * Safe to call twice.
   */
  async shutdown(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
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
    await Promise.all(this.#telling);
    await Promise.all([this.#store.close(), this.#cluster?.close()]);
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
