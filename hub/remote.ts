/**
 * The hub's side of the cluster: what other instances send (room lines, direct messages, members
 * that came back or went) reaches this instance's members here, and what this instance tells the
 * others about members leaving is tracked until it is done, so shutdown can wait for it.
 *
 * Presence keeps one order everywhere: a leaver's presence record is removed before its leave line
 * is published, so an instance that reads the members meanwhile and misses the line never lists
 * the leaver.
 */
import type { Client } from "../client.ts";
import { type ChatMessage, nameKey, presenceLine } from "../protocol/protocol.ts";
import type { Cluster, ClusterListener } from "./cluster.ts";
import type { FanOut } from "./fanout.ts";
import type { Memberships } from "./member.ts";
import type { Replies } from "./replies.ts";
import type { Rooms } from "./rooms.ts";
import type { Presence } from "./presence.ts";
import type { Sequencer } from "./sequencer.ts";
import type { Sessions } from "./sessions.ts";

/** What {@linkcode Remote} works with; all of it owned by the hub. */
export interface RemoteParts {
  cluster: Cluster;
  rooms: Rooms;
  presence: Presence;
  memberships: Memberships;
  sessions: Sessions;
  fanout: FanOut;
  sequencer: Sequencer;
  replies: Replies;
  now: () => number;
}

/** Carries lines and presence between this instance's rooms and the other instances. */
export class Remote implements ClusterListener {
  #p: RemoteParts;
  /** Work still telling the other instances something; shutdown waits for it. */
  #telling = new Set<Promise<void>>();

  constructor(parts: RemoteParts) {
    this.#p = parts;
  }

  remoteRoomLine(roomName: string, line: string, seq?: number): void {
    const room = this.#p.rooms.get(roomName);
    if (room === undefined) return;
    if (seq === undefined) {
      const presence = presenceOf(line);
      if (presence === null) return this.#p.rooms.emit(room, line);
      if (presence.type === "join") return this.#p.presence.arrived(room, presence.user, line);
      return this.#p.presence.departed(room, presence.user, line);
    }
    let m: ChatMessage;
    try {
      m = JSON.parse(line);
    } catch {
      return;
    }
    if (this.#p.sequencer.deliver(room, m, line)) this.#p.fanout.schedule();
  }

  remoteDirect(key: string, line: string): void {
    for (const client of this.#p.sessions.clientsOf(key)) this.#p.replies.send(client, line);
  }

  namesLost(keys: string[]): void {
    this.#p.sessions.lost(keys);
  }

  membersBack(members: { room: string; name: string }[]): void {
    this.#announce("join", members);
  }

  membersGone(gone: { room: string; name: string }[]): void {
    // Only the instance whose sweep removed them hears of them: it tells every other one.
    this.#announce("leave", gone);
  }

  /** Fills a room from the store after the last seq its members got (see sequencer.ts). */
  async resync(roomName: string): Promise<void> {
    const room = this.#p.rooms.get(roomName);
    if (room === undefined) return;
    // Presence lines may have been lost too: the roster is read again.
    await Promise.all([
      this.#p.sequencer.resync(room),
      this.#p.presence.reload(room).catch(() => {}),
    ]);
  }

  /** Tells this instance's members and every other instance that members came or went. */
  #announce(type: "join" | "leave", members: { room: string; name: string }[]): void {
    const ts = this.#p.now();
    for (const { room: roomName, name } of members) {
      const line = presenceLine(type, roomName, name, ts);
      const room = this.#p.rooms.get(roomName);
      if (room !== undefined) {
        if (type === "join") this.#p.presence.arrived(room, name, line);
        else this.#p.presence.departed(room, name, line);
      }
      this.#p.cluster.publishPresence(roomName, line);
    }
  }

  /**
   * Tells the other instances that `name` left `room`: the presence record goes first, then the
   * line (none when `line` is null). The subscription ends with the last local member, unless a
   * join is on its way.
   */
  async leave(roomName: string, name: string, line: string | null): Promise<void> {
    // The user may be back already on a new connection (a resume) that joined or is joining this
    // room: for the others nothing changed, and removing the record would remove the new one too.
    for (const holder of this.#p.sessions.clientsOf(nameKey(name))) {
      const member = this.#p.memberships.peek(holder);
      if (member !== undefined && (member.rooms.has(roomName) || member.joining?.has(roomName))) {
        return;
      }
    }
    const room = this.#p.rooms.get(roomName);
    const last = room === undefined || room.unused;
    await this.#p.cluster.exitRoom(roomName, name, last);
    if (line !== null) this.#p.cluster.publishPresence(roomName, line);
  }

  /** Keeps track of work that tells other instances something, so shutdown can wait for it. */
  track(work: Promise<unknown>): Promise<void> {
    // The cluster's calls never reject; should one, it is logged rather than left unhandled.
    const told = work.then(() => {}, (e) => this.#p.replies.failed(e));
    this.#telling.add(told);
    void told.finally(() => this.#telling.delete(told));
    return told;
  }

  /** Resolves once everything tracked so far is told. */
  async settled(): Promise<void> {
    await Promise.all(this.#telling);
  }

  /** Tells the others that `client` left the rooms in `gone`, once `released` (its name) is free. */
  leaveAll(
    client: Client,
    gone: { room: string; line: string | null }[],
    released: Promise<void> | undefined,
  ): void {
    const name = client.name!;
    // Other instances hear the leave only once the name is free there: a client that reconnects
    // on seeing it must find its name available.
    const tell = () => Promise.all(gone.map((g) => this.leave(g.room, name, g.line)));
    this.track(released === undefined ? tell() : released.then(tell));
  }
}

/** The type and user of a join or leave line from another instance, or null for any other line. */
function presenceOf(line: string): { type: "join" | "leave"; user: string } | null {
  // Cheap test first: most lines without a seq are typing notices.
  if (!line.startsWith('{"type":"join"') && !line.startsWith('{"type":"leave"')) return null;
  try {
    const { type, user } = JSON.parse(line);
    return (type === "join" || type === "leave") && typeof user === "string"
      ? { type, user }
      : null;
  } catch {
    return null;
  }
}
