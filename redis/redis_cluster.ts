/**
 * The hub's view of the other instances, over Redis: names unique cluster-wide, presence as the
 * union over live instances, and room and direct lines crossing instances on the bus. Loaded only
 * with `--redis`; it adapts redis_bus.ts and redis_presence.ts to the hub's `Cluster` interface.
 */
import type { Cluster, ClusterListener } from "../hub/cluster.ts";
import { RedisBus } from "./redis_bus.ts";
import { RedisPresence } from "./redis_presence.ts";

/** Options for {@linkcode RedisCluster.connect}. */
export interface RedisClusterOptions {
  url: string;
  /**
   * This instance's id, unique in the cluster (give the same to a fenced RedisStore).
   * @default a random UUID
   */
  id?: string;
  /** Presence TTL: a crashed instance's users vanish within this, in ms. @default 10000 */
  ttlMs?: number;
  /** How often to refresh presence, in ms. @default 3000 */
  refreshMs?: number;
  /** How often to look for dead instances, in ms. @default 5000 */
  sweepMs?: number;
  /**
   * Hears each change of {@linkcode RedisCluster.healthy}, once per change (not per reconnect
   * attempt), e.g. to log an outage and its end. @default nothing
   */
  onHealth?: (healthy: boolean) => void;
}

/** Join and leave lines kept while Redis is unreachable; past this the oldest are dropped. */
export const MAX_UNSENT_PRESENCE_LINES = 10_000;
/**
 * After an outage the kept presence lines go out when this instance is back, and once more this
 * long after, in ms: another instance may resubscribe later than this one (each reconnects on its
 * own, backing off to once a second), and a repeated join or leave changes nothing.
 */
export const PRESENCE_RESEND_MS = 3_000;

/** Events kept from before `listen`; past this the oldest are dropped (a start takes ms). */
export const MAX_EARLY_EVENTS = 10_000;

/** Several instances as one chat, through Redis pub/sub and expiring presence keys. */
export class RedisCluster implements Cluster {
  readonly id: string;
  #listener: ClusterListener | null = null;
  /** What other instances sent before `listen`, oldest first. */
  #early: ((listener: ClusterListener) => void)[] = [];
  #bus: RedisBus;
  #presence: RedisPresence;
  #onError: (e: unknown) => void;
  /** Presence lines not yet published, oldest first (see `publishPresence`). */
  #unsent: { room: string; line: string }[] = [];
  #resendTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    id: string,
    bus: RedisBus,
    presence: RedisPresence,
    onError: (e: unknown) => void,
  ) {
    this.id = id;
    this.#bus = bus;
    this.#presence = presence;
    this.#onError = onError;
  }

  /** Connects both the bus and presence; `listen` then names who hears the other instances. */
  static async connect(
    options: RedisClusterOptions,
    onError: (e: unknown) => void,
  ): Promise<RedisCluster> {
    const id = options.id ?? crypto.randomUUID();
    let cluster: RedisCluster | undefined;
    // Events can come as soon as the bus is up, before `connect` returns: kept until `listen`.
    const early: ((listener: ClusterListener) => void)[] = [];
    const tell = (event: (listener: ClusterListener) => void) => {
      if (cluster !== undefined && cluster.#listener !== null) return event(cluster.#listener);
      early.push(event);
      if (early.length > MAX_EARLY_EVENTS) early.shift();
    };
    const bus = await RedisBus.connect({
      url: options.url,
      id,
      echo: false,
      events: {
        onRoomLine: (room, line, _origin, seq) => tell((l) => l.remoteRoomLine(room, line, seq)),
        onDirect: (key, line) => tell((l) => l.remoteDirect(key, line)),
        onResync: (room) => tell((l) => void l.resync(room)),
        onHealth: (healthy) => {
          if (healthy && cluster !== undefined) cluster.#sendUnsent();
          options.onHealth?.(healthy);
        },
      },
    });
    try {
      const presence = await RedisPresence.connect({
        url: options.url,
        id,
        ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
        ...(options.refreshMs === undefined ? {} : { refreshMs: options.refreshMs }),
        ...(options.sweepMs === undefined ? {} : { sweepMs: options.sweepMs }),
        onExpired: (gone) => tell((l) => l.membersGone(gone)),
        onNamesLost: (keys) => tell((l) => l.namesLost(keys)),
        onRestored: (members) => tell((l) => l.membersBack(members)),
      });
      cluster = new RedisCluster(id, bus, presence, onError);
      cluster.#early = early;
      return cluster;
    } catch (e) {
      await bus.close();
      throw e;
    }
  }

  get healthy(): boolean {
    return this.#bus.healthy;
  }

  listen(listener: ClusterListener): void {
    this.#listener = listener;
    const early = this.#early.splice(0);
    for (const event of early) event(listener);
  }

  claimName(key: string, name: string): Promise<boolean> {
    return this.#presence.claimName(key, name);
  }

  releaseName(key: string): Promise<void> {
    return this.#presence.releaseName(key).catch(this.#onError);
  }

  async ownerOf(key: string): Promise<string | null> {
    return (await this.#presence.ownerOf(key))?.name ?? null;
  }

  async enterRoom(room: string, name: string): Promise<void> {
    // Subscribe before the caller reads history, so no line falls between the read and the feed.
    await this.#bus.subscribe(room);
    await this.#presence.join(room, name);
  }

  async exitRoom(room: string, name: string, lastLocal: boolean): Promise<void> {
    if (lastLocal) this.#bus.unsubscribe(room).catch(this.#onError);
    await this.#presence.leave(room, name).catch(this.#onError);
  }

  members(room: string): Promise<string[]> {
    return this.#presence.members(room);
  }

  rooms(): Promise<{ room: string; members: number }[]> {
    return this.#presence.rooms();
  }

  publishRoom(room: string, line: string, seq?: number): void {
    this.#bus.publishRoom(room, line, seq).catch(this.#onError);
  }

  publishPresence(room: string, line: string): void {
    // Behind lines already waiting, so the other instances hear joins and leaves in order.
    if (this.#unsent.length > 0 || !this.#bus.healthy) return this.#keep(room, line);
    this.#bus.publishRoom(room, line).catch(() => this.#keep(room, line));
  }

  #keep(room: string, line: string): void {
    if (this.#unsent.length >= MAX_UNSENT_PRESENCE_LINES) this.#unsent.shift();
    this.#unsent.push({ room, line });
  }

  /** The bus is healthy again: publishes the kept presence lines, in order. */
  #sendUnsent(): void {
    const unsent = this.#unsent;
    this.#unsent = [];
    if (unsent.length === 0) return;
    for (const { room, line } of unsent) {
      this.#bus.publishRoom(room, line).catch(() => this.#keep(room, line));
    }
    clearTimeout(this.#resendTimer);
    this.#resendTimer = setTimeout(() => void this.#resend(unsent), PRESENCE_RESEND_MS);
  }

  /** Sends again the lines that still say what presence says (a user may have come back since). */
  async #resend(lines: { room: string; line: string }[]): Promise<void> {
    const rooms = new Map<string, Set<string>>();
    try {
      for (const { room } of lines) {
        if (!rooms.has(room)) rooms.set(room, new Set(await this.#presence.members(room)));
      }
    } catch {
      return; // Redis is away again: presence cannot be checked, so nothing is repeated
    }
    for (const { room, line } of lines) {
      const { type, user } = JSON.parse(line);
      if ((type === "join") !== rooms.get(room)!.has(user)) continue;
      this.#bus.publishRoom(room, line).catch(() => {});
    }
  }

  publishDirect(key: string, line: string, from: string): Promise<boolean> {
    // Through presence: the check that this instance still holds `from` and the publish are one.
    const { channel, message } = this.#bus.directEnvelope(key, line);
    return this.#presence.publishAs(from, channel, message);
  }

  async close(): Promise<void> {
    clearTimeout(this.#resendTimer);
    // In parallel: while Redis is unreachable each close waits out its bound.
    await Promise.all([this.#presence.close(), this.#bus.close()]);
  }
}
