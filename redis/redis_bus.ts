/**
 * Cross-instance fan-out over Redis pub/sub: every instance publishes the lines it produces for a
 * room (committed messages, join, leave, typing) and direct messages, and receives those of the
 * rooms it has members in.
 *
 * Why pub/sub and not reading the room streams with XREAD BLOCK:
 * - Committed messages are already durable in the store, so the bus only has to be fast, not
 *   reliable: a line lost while an instance was cut off is refilled from the store by seq
 *   (`onResync`), which the hub has to be able to do anyway for joins with `since`.
 * - Join, leave, typing and DMs are not stored at all; pub/sub carries them with no extra keys,
 *   no trimming and no per-room read cursors.
 * - Subscribing to a room is one SUBSCRIBE on a connection that never blocks; XREAD BLOCK over a
 *   changing set of rooms needs its blocking call interrupted whenever the set changes.
 * - A PUBLISH costs one command and reaches only the instances subscribed to that room.
 *
 * What that costs, and what the hub must do about it:
 * - Lines of one room published by different instances can arrive out of seq order (A commits
 *   seq 5, B commits 6, B's PUBLISH overtakes A's). A seq'd line above the next expected seq is
 *   not a loss: append stores a seq atomically with allocating it, so every lower seq is already
 *   readable in the store; read the gap from the store, and drop lines at or below the last seq
 *   delivered when they arrive late.
 * - An instance that crashes between its append and its PUBLISH leaves a stored message that
 *   other instances learn about only with the next message of that room (the gap) or a resync.
 * - While the subscriber connection is down nothing arrives; after it is back the bus
 *   resubscribes every room first and only then calls `onResync(room)` for each, so a store read
 *   started by `onResync` cannot miss a line published in between. Redis itself disconnects a
 *   subscriber that falls behind by more than its pub/sub output buffer limit (32 MB by
 *   default); that is a reconnect like any other.
 * - A hung Redis sends no error: a heartbeat PING (`heartbeatMs`) left unanswered past the command
 *   timeout drops the connection, so `healthy` turns false within heartbeat + timeout.
 * - Direct messages all go to one channel that every instance reads, and each hub keeps those for
 *   its own users. That costs every instance a parse per DM, which is fine for a handful of
 *   instances; routing by the name's owner (redis_presence.ts knows it) is the upgrade path.
 */
import {
  closeRedis,
  connectRedis,
  type Redis,
  type RedisConnectionOptions,
} from "./redis_client.ts";

/** What the bus tells the hub. */
export interface ClusterEvents {
  /**
   * A serialized server line for a room (a committed message, or join/leave/typing), published by
   * any instance, this one included unless `echo` is false.
   */
  onRoomLine(room: string, line: string, origin: string, seq?: number): void;
  /** A direct message line for a user key (NFKC lower-case name). */
  onDirect(userKey: string, line: string, origin: string): void;
  /**
   * After a reconnect to Redis, once per subscribed room, when the subscription is back: lines
   * published while the bus was cut off are lost, so fill the gap from the store after the last
   * seq delivered.
   */
  onResync(room: string): void;
  /** The bus went down (false) or is back and resubscribed (true); called on changes only. */
  onHealth(healthy: boolean): void;
}

/** Publishes lines to every instance and delivers theirs. */
export interface Bus {
  /**
   * Receives the room's lines from now on; idempotent. While Redis is down it resolves at once:
   * the room is subscribed on reconnect, followed by `onResync(room)`.
   */
  subscribe(room: string): Promise<void>;
  /** Stops receiving the room's lines; lines already on their way are dropped. */
  unsubscribe(room: string): Promise<void>;
  /** Publishes a room line; rejects when Redis is unreachable. */
  publishRoom(room: string, line: string, seq?: number): Promise<void>;
  /** Publishes a direct line for a user key; rejects when Redis is unreachable. */
  publishDirect(userKey: string, line: string): Promise<void>;
  /** Both connections are up and every room is subscribed. */
  readonly healthy: boolean;
  /** Closes both connections; safe to call twice. */
  close(): Promise<void>;
}

/** Options for {@linkcode RedisBus.connect}. */
export interface RedisBusOptions extends RedisConnectionOptions {
  /** `redis://[:password@]host:port[/db]`. */
  url: string;
  /** This instance's id, sent as `origin` with every line: 1-64 of `A-Z a-z 0-9 _ . -`. */
  id: string;
  events: ClusterEvents;
  /** Also deliver the lines this instance published. @default true */
  echo?: boolean;
  /** Prefix of every channel, so several chats can share one Redis. @default "chat:" */
  prefix?: string;
  /**
   * How often both connections PING, in ms. A PING unanswered within the command timeout drops
   * the connection, so a hung or unreachable Redis makes the bus unhealthy even when no command
   * is pending (a subscriber otherwise waits silently forever). @default 5000
   */
  heartbeatMs?: number;
}

/** Most channels named in one SUBSCRIBE when resubscribing. */
const SUBSCRIBE_CHUNK = 1000;
const ID_PATTERN = /^[A-Za-z0-9_.\-]{1,64}$/;

/**
 * The {@linkcode Bus} over Redis pub/sub, with one connection to publish and one to subscribe.
 *
 * Payloads are `origin \n seq \n line` for rooms (seq empty when absent) and
 * `origin \n userKey \n line` for direct messages; the line is passed through untouched.
 */
export class RedisBus implements Bus {
  #pub: Redis;
  #sub: Redis;
  #id: string;
  #events: ClusterEvents;
  #echo: boolean;
  #roomPrefix: string;
  #directChannel: string;
  /** The rooms the hub asked for: what gets resubscribed, and the filter for late lines. */
  #rooms = new Set<string>();
  #pubUp = true;
  #subUp = true;
  #healthy = true;
  /** SUBSCRIBEs sent and not yet answered, by room. */
  #subscribing = new Map<string, Promise<void>>();
  #closed = false;
  #heartbeat: ReturnType<typeof setInterval>;
  /** Connections with a heartbeat PING in flight: one at a time each. */
  #pinging = new Set<Redis>();

  private constructor(pub: Redis, sub: Redis, options: RedisBusOptions) {
    this.#pub = pub;
    this.#sub = sub;
    this.#id = options.id;
    this.#events = options.events;
    this.#echo = options.echo ?? true;
    const prefix = options.prefix ?? "chat:";
    this.#roomPrefix = `${prefix}bus:room:`;
    this.#directChannel = `${prefix}bus:direct`;
    sub.on("message", (channel: string, payload: string) => this.#receive(channel, payload));
    pub.on("close", () => this.#setUp("pub", false));
    pub.on("ready", () => this.#setUp("pub", true));
    sub.on("close", () => this.#setUp("sub", false));
    sub.on("ready", () => void this.#resubscribe());
    this.#heartbeat = setInterval(() => {
      for (const c of [pub, sub]) {
        if (c.status !== "ready" || this.#pinging.has(c)) continue;
        this.#pinging.add(c);
        c.ping()
          // An unanswered PING means a hung Redis or a dead path to it: destroy the socket (a
          // polite close would wait for the silent peer), which rejects what is pending there
          // and starts the reconnect.
          .catch(() => c.status === "ready" && c.stream.destroy())
          .finally(() => this.#pinging.delete(c));
      }
    }, options.heartbeatMs ?? 5000);
  }

  /**
   * Connects both connections and subscribes to direct messages; rejects when Redis is unreachable.
   *
   * @example
   * ```ts ignore
   * const bus = await RedisBus.connect({ url: "redis://127.0.0.1:6379", id: "a1", events });
   * await bus.subscribe("general");
   * await bus.publishRoom("general", '{"type":"typing","room":"general","user":"alice"}');
   * await bus.close();
   * ```
   */
  static async connect(options: RedisBusOptions): Promise<RedisBus> {
    if (!ID_PATTERN.test(options.id)) {
      throw new Error("Cannot start the bus: id must be 1-64 of A-Z a-z 0-9 _ . -");
    }
    const pub = await connectRedis(options.url, options);
    let sub: Redis;
    try {
      sub = await connectRedis(options.url, options);
      await sub.subscribe(`${options.prefix ?? "chat:"}bus:direct`);
    } catch (e) {
      await closeRedis(pub);
      throw e;
    }
    return new RedisBus(pub, sub, options);
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  /** This instance's id, the `origin` of the lines it publishes. */
  get id(): string {
    return this.#id;
  }

  async subscribe(room: string): Promise<void> {
    if (this.#closed) throw new Error("Cannot subscribe: the bus is closed");
    // A second caller shares the first one's outcome: returning at once would let it rely on a
    // subscription that may still fail.
    const inFlight = this.#subscribing.get(room);
    if (inFlight !== undefined) return await inFlight;
    if (this.#rooms.has(room)) return;
    this.#rooms.add(room);
    if (this.#sub.status !== "ready") return; // #resubscribe takes it when the connection is back
    const subscribing = this.#sub.subscribe(this.#roomPrefix + room).then(() => {}, (e) => {
      // A dropped connection is taken care of by #resubscribe; anything else is a real failure.
      if (this.#sub.status === "ready") {
        this.#rooms.delete(room);
        throw e;
      }
    });
    this.#subscribing.set(room, subscribing);
    try {
      await subscribing;
    } finally {
      if (this.#subscribing.get(room) === subscribing) this.#subscribing.delete(room);
    }
  }

  async unsubscribe(room: string): Promise<void> {
    if (!this.#rooms.delete(room) || this.#sub.status !== "ready") return;
    // A failed UNSUBSCRIBE only lets extra lines arrive, and #receive drops those.
    await this.#sub.unsubscribe(this.#roomPrefix + room).catch(() => {});
  }

  async publishRoom(room: string, line: string, seq?: number): Promise<void> {
    if (this.#closed) throw new Error("Cannot publish: the bus is closed");
    await this.#pub.publish(this.#roomPrefix + room, `${this.#id}\n${seq ?? ""}\n${line}`);
  }

  /** The channel and message that carry a direct line for `userKey` (see `publishDirect`). */
  directEnvelope(userKey: string, line: string): { channel: string; message: string } {
    return { channel: this.#directChannel, message: `${this.#id}\n${userKey}\n${line}` };
  }

  async publishDirect(userKey: string, line: string): Promise<void> {
    if (this.#closed) throw new Error("Cannot publish: the bus is closed");
    await this.#pub.publish(this.#directChannel, `${this.#id}\n${userKey}\n${line}`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#rooms.clear();
    await Promise.all([closeRedis(this.#sub), closeRedis(this.#pub)]);
  }

  #receive(channel: string, payload: string): void {
    const a = payload.indexOf("\n");
    const b = a < 0 ? -1 : payload.indexOf("\n", a + 1);
    if (b < 0) return; // not ours
    const origin = payload.slice(0, a);
    if (!this.#echo && origin === this.#id) return;
    const middle = payload.slice(a + 1, b);
    const line = payload.slice(b + 1);
    if (channel === this.#directChannel) {
      this.#events.onDirect(middle, line, origin);
      return;
    }
    if (!channel.startsWith(this.#roomPrefix)) return;
    const room = channel.slice(this.#roomPrefix.length);
    if (!this.#rooms.has(room)) return; // unsubscribed while the line was on its way
    const seq = middle === "" ? undefined : Number(middle);
    this.#events.onRoomLine(
      room,
      line,
      origin,
      seq !== undefined && Number.isSafeInteger(seq) ? seq : undefined,
    );
  }

  /** After a reconnect: resubscribe everything, then report healthy, then ask for resyncs. */
  async #resubscribe(): Promise<void> {
    if (this.#closed) return;
    const rooms = [...this.#rooms];
    const channels = [this.#directChannel, ...rooms.map((r) => this.#roomPrefix + r)];
    try {
      for (let i = 0; i < channels.length; i += SUBSCRIBE_CHUNK) {
        await this.#sub.subscribe(...channels.slice(i, i + SUBSCRIBE_CHUNK));
      }
    } catch {
      // The connection dropped again (its next `ready` retries) or SUBSCRIBE timed out on a live
      // connection: drop it, so the reconnect retries.
      if (this.#sub.status === "ready") this.#sub.stream.destroy();
      return;
    }
    if (this.#closed) return;
    this.#setUp("sub", true);
    // Rooms subscribed while this ran were subscribed by subscribe() itself; rooms unsubscribed
    // meanwhile need no resync.
    for (const room of rooms) if (this.#rooms.has(room)) this.#events.onResync(room);
  }

  #setUp(which: "pub" | "sub", up: boolean): void {
    if (which === "pub") this.#pubUp = up;
    else this.#subUp = up;
    const healthy = this.#pubUp && this.#subUp && !this.#closed;
    if (healthy === this.#healthy || this.#closed) return;
    this.#healthy = healthy;
    this.#events.onHealth(healthy);
  }
}
