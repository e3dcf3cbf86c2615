/**
 * The message path: a member's `say` is checked against the resend guard (a resend of an accepted
 * message gets the original back, never a second copy), queued for the next group commit within
 * the engine's input bounds (past them refused as busy), and, once committed, appended to its
 * room and echoed to its sender as the acknowledgement.
 */
import { type Client, utf8Length } from "../client.ts";
import { CloseCode, messageLine, RESEND_WINDOW_MS } from "../protocol/protocol.ts";
import type { Appended, NewMessage, Refused, Store } from "../store/store.ts";
import type { Cluster } from "./cluster.ts";
import { type FanOut, type Pending, PENDING_LINE_BYTES } from "./fanout.ts";
import type { Memberships } from "./member.ts";
import type { HubStats } from "./options.ts";
import type { Replies } from "./replies.ts";
import { ResendGuard } from "./resend_guard.ts";
import type { Rooms } from "./rooms.ts";
import type { Sequencer } from "./sequencer.ts";

/** What {@linkcode Messages} works with; all of it owned by the hub. */
export interface MessageParts {
  store: Store;
  cluster: Cluster | null;
  rooms: Rooms;
  memberships: Memberships;
  fanout: FanOut;
  sequencer: Sequencer;
  replies: Replies;
  stats: HubStats;
  now: () => number;
  /** True once shutdown began: new messages are refused. */
  draining: () => boolean;
}

/** Takes messages in and acknowledges them once stored. */
export class Messages {
  #p: MessageParts;
  #guard = new ResendGuard();

  constructor(parts: MessageParts) {
    this.#p = parts;
  }

  /** Loads the resend guard with the messages stored within the resend window. */
  async load(): Promise<void> {
    for (const m of await this.#p.store.recentWithCid(this.#p.now() - RESEND_WINDOW_MS)) {
      const key = ResendGuard.keyOf(m);
      if (key !== undefined) this.#guard.accepted(key, m);
    }
  }

  /** Forgets resend-guard entries older than the resend window. */
  expire(now: number): void {
    this.#guard.expire(now);
  }

  say(client: Client, roomName: string, text: string, cid: string | undefined): void {
    const p = this.#p;
    if (!p.memberships.of(client).rooms.has(roomName)) {
      return p.replies.refuse(client, "not_in_room", "Cannot say: join the room first", cid);
    }
    if (p.draining()) {
      const message = "Cannot say: the server is shutting down";
      return p.replies.refuse(client, "unavailable", message, cid);
    }
    p.stats.messagesReceived++;
    let key: string | undefined;
    if (cid !== undefined) {
      key = ResendGuard.key(roomName, client.key, cid);
      const earlier = this.#guard.original(key, p.now());
      // A resend of an accepted message: the sender alone gets the original back.
      if (earlier !== undefined) return p.replies.send(client, messageLine(earlier));
      // Already in the batch being committed: its echo will answer this resend too.
      if (this.#guard.inFlight(key)) return;
    }
    const message: NewMessage = { room: roomName, from: client.name!, text, ts: p.now() };
    if (cid !== undefined) message.cid = cid;
    const bytes = utf8Length(text) + PENDING_LINE_BYTES;
    if (!p.fanout.offer({ message, sender: client, guardKey: key, bytes })) {
      return p.replies.busy(client, cid);
    }
    if (key !== undefined) this.#guard.begin(key);
  }

  /** Appends committed messages to their rooms' logs and echoes them (the engine then serves). */
  committed(batch: Pending[], stored: Appended[]): void {
    const p = this.#p;
    for (let i = 0; i < batch.length; i++) {
      const m = stored[i];
      const { sender, guardKey: key, bytes } = batch[i];
      if ("refused" in m) {
        this.#refused(batch[i], m);
        continue;
      }
      const line = messageLine(m);
      // The text was measured when it was queued (a resend the store recognised has the same).
      if (key !== undefined) this.#guard.accepted(key, m, bytes - PENDING_LINE_BYTES);
      p.cluster?.publishRoom(m.room, line, m.seq);
      const room = p.rooms.get(m.room);
      const reaches = room !== undefined && p.sequencer.deliver(room, m, line);
      // The echo is the acknowledgement. A member gets it with the room unless the message predates
      // its membership (a resend the store recognised as an old message); a sender who left the
      // room before the commit gets it directly. A member whose message a resync already delivered
      // (another instance's line overtook this commit) must not get it twice.
      const since = room?.members.has(sender)
        ? p.memberships.of(sender).joinedAt.get(m.room)
        : undefined;
      if (since === undefined || (!reaches && m.seq <= since)) p.replies.send(sender, line);
    }
  }

  /**
   * The store would not take a message because its sender no longer holds its name in the cluster
   * (this instance was cut off or frozen meanwhile): someone else holds it now, and this connection
   * is closed as name taken; or nobody does yet, while this instance writes its names back, and
   * the sender is asked to send it again.
   */
  #refused(pending: Pending, why: Refused): void {
    const { sender, guardKey, message } = pending;
    if (guardKey !== undefined) this.#guard.failed(guardKey);
    if (why.refused === "elsewhere") {
      return sender.close(CloseCode.nameTaken, "name taken", "name_taken");
    }
    const text = "Cannot say: your name is being restored after an outage, send it again";
    this.#p.replies.refuse(sender, "unavailable", text, message.cid);
  }

  /** The commit failed: every sender in the batch is told to send again. */
  failed(batch: Pending[], error: unknown): void {
    const p = this.#p;
    p.replies.failed(error);
    for (const pending of batch) {
      if (pending.guardKey !== undefined) this.#guard.failed(pending.guardKey);
      const message = "Cannot say: the message could not be stored, send it again";
      p.replies.refuse(pending.sender, "unavailable", message, pending.message.cid);
    }
  }
}
