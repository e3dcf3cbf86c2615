/**
 * Direct messages between two online users: delivered to the recipient's connection here, or, in
 * a cluster, found through the cluster and carried by its bus to the instance that holds the name.
 * The sender gets the same line back as its acknowledgement, once it was handed on. DMs are not
 * stored. A DM is published for another instance only while this one holds the sender's name.
 */
import type { Client } from "../client.ts";
import { CloseCode, dmLine, nameKey } from "../protocol/protocol.ts";
import { type Cluster, fromCluster } from "./cluster.ts";
import type { HubStats } from "./options.ts";
import type { Replies } from "./replies.ts";
import type { Sessions } from "./sessions.ts";

/** What {@linkcode DirectMessages} works with; all of it owned by the hub. */
export interface DmParts {
  sessions: Sessions;
  cluster: Cluster | null;
  replies: Replies;
  stats: HubStats;
  now: () => number;
}

/** Sends direct messages. */
export class DirectMessages {
  #p: DmParts;

  constructor(parts: DmParts) {
    this.#p = parts;
  }

  send(client: Client, to: string, text: string, cid: string | undefined): void {
    const p = this.#p;
    const key = nameKey(to);
    const targets = p.sessions.clientsOf(key);
    if (targets.length === 0) {
      if (p.cluster !== null) return void this.#elsewhere(p.cluster, client, key, to, text, cid);
      return p.replies.refuse(client, "unknown_user", `Cannot dm: ${to} is not online`, cid);
    }
    p.stats.messagesReceived++;
    const line = dmLine(client.name!, targets[0].name!, text, p.now(), cid);
    // Every connection of both accounts: the sender's other tabs show what it sent, too.
    for (const c of new Set([...targets, ...p.sessions.clientsOf(client.key)])) {
      p.replies.send(c, line);
    }
  }

  /** A DM to a user on another instance: found through the cluster, carried by the bus. */
  async #elsewhere(
    cluster: Cluster,
    client: Client,
    key: string,
    to: string,
    text: string,
    cid: string | undefined,
  ): Promise<void> {
    const p = this.#p;
    let owner: string | null;
    try {
      owner = await fromCluster(cluster.ownerOf(key));
    } catch (e) {
      return p.replies.unavailable(client, e, "Cannot dm: the cluster is unavailable", cid);
    }
    if (owner === null) {
      return p.replies.refuse(client, "unknown_user", `Cannot dm: ${to} is not online`, cid);
    }
    if (client.closed) return;
    p.stats.messagesReceived++;
    const line = dmLine(client.name!, owner, text, p.now(), cid);
    let sent: boolean;
    try {
      sent = await fromCluster(cluster.publishDirect(key, line, client.key!));
    } catch (e) {
      return p.replies.unavailable(client, e, "Cannot dm: the cluster is unavailable", cid);
    }
    // This instance lost the sender's name while it was cut off: someone else holds it now.
    if (!sent) return client.close(CloseCode.nameTaken, "name taken", "name_taken");
    for (const c of p.sessions.clientsOf(client.key)) p.replies.send(c, line);
  }
}
