/**
 * What the hub and the instances it shares rooms with say to each other: the hub calls a
 * `Cluster`, the cluster calls back a `ClusterListener`. `redis_cluster.ts` is the `Cluster` on
 * Redis; a single instance has none.
 */

/**
 * The other server instances, when several share rooms (`--redis`). The hub keeps doing batching
 * and bounded queues locally; the cluster carries names, presence and lines between instances.
 */
export interface Cluster {
  /** False while the link to the other instances is down. */
  readonly healthy: boolean;
  /**
   * Starts telling `listener` what other instances send; the hub calls it once, when it exists.
   * What arrived before is told then, in order.
   */
  listen(listener: ClusterListener): void;
  /** Takes a name for this instance; false when another instance holds it. */
  claimName(key: string, name: string): Promise<boolean>;
  /** Frees a name cluster-wide; resolves once it is free (never rejects). */
  releaseName(key: string): Promise<void>;
  /** The name as registered by whoever holds `key` on any instance, or null. */
  ownerOf(key: string): Promise<string | null>;
  /** Subscribes to the room's lines and records the member; resolves once lines will arrive. */
  enterRoom(room: string, name: string): Promise<void>;
  /**
   * Removes the member's record and, when no local member or join is left, unsubscribes; resolves
   * once the record is gone (never rejects), so a leave line sent after it finds presence agreeing.
   */
  exitRoom(room: string, name: string, lastLocal: boolean): Promise<void>;
  /** Members on every live instance. */
  members(room: string): Promise<string[]>;
  rooms(): Promise<{ room: string; members: number }[]>;
  publishRoom(room: string, line: string, seq?: number): void;
  /**
   * A join or leave line for the room's members on the other instances. Unlike other lines it is
   * kept while the link is down and sent once it is back: no resync recovers presence lines.
   */
  publishPresence(room: string, line: string): void;
  /**
   * A direct line for the user with name key `key`, from the user with name key `from`; resolves
   * false, publishing nothing, when this instance no longer holds `from`'s name (it was cut off or
   * frozen and another instance may have given the name away). Rejects when the cluster is down.
   */
  publishDirect(key: string, line: string, from: string): Promise<boolean>;
  close(): Promise<void>;
}

/** A call to the other instances failed; `cause` is what the cluster threw. */
export class ClusterUnavailable extends Error {
  constructor(cause: unknown) {
    super("the cluster is unavailable", { cause });
    this.name = "ClusterUnavailable";
  }
}

/** `call`'s result, or a {@linkcode ClusterUnavailable} carrying what it threw. */
export async function fromCluster<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (e) {
    throw new ClusterUnavailable(e);
  }
}

/** What the cluster tells the hub. */
export interface ClusterListener {
  /** A line another instance produced for a room; `seq` is set for committed messages. */
  remoteRoomLine(room: string, line: string, seq?: number): void;
  /** A direct message for the user with name key `key`, from another instance. */
  remoteDirect(key: string, line: string): void;
  /** Lines may have been lost (the link was down): fill the room from the store. */
  resync(room: string): void;
  /** Members of an instance that died; they left their rooms. */
  membersGone(gone: { room: string; name: string }[]): void;
  /** Names this instance held that another instance took while this one was cut off. */
  namesLost(keys: string[]): void;
  /** Members of this instance that the others had taken for gone while it was cut off. */
  membersBack(members: { room: string; name: string }[]): void;
}
