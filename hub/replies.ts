/**
 * How the hub answers one client directly: a reply, a refusal (counted, and counted toward the
 * client's flood window), a busy-server refusal with its retry hint, and the eviction of a slow
 * consumer (4008) with a named reason. Failures of the store and of the cluster are logged here,
 * each under its own event (`store_failed`, `cluster_failed`), so an operator knows which is down.
 */
import type { Client } from "../client.ts";
import { CloseCode, type ErrorCode, errorLine } from "../protocol/protocol.ts";
import { ClusterUnavailable } from "./cluster.ts";
import type { HubObservers, HubStats } from "./options.ts";
import type { SlowKind } from "./room_log.ts";

/** The close reason a slow consumer hears, by how it was found. */
const SLOW_REASONS: Record<SlowKind, string> = {
  behind: "slow consumer: fell behind",
  stalled: "slow consumer: stopped reading",
  over_budget: "slow consumer: send queue full",
};

/** Most characters of an error's text that reach the log. */
const LOGGED_ERROR_CHARS = 200;

/** Direct replies, refusals and evictions for the hub's clients. */
export class Replies {
  #stats: HubStats;
  #observers: HubObservers;
  #retryAfterMs: () => number;

  /** `retryAfterMs` tells, when the commit queue is full, how long a sender should wait. */
  constructor(stats: HubStats, observers: HubObservers, retryAfterMs: () => number) {
    this.#stats = stats;
    this.#observers = observers;
    this.#retryAfterMs = retryAfterMs;
  }

  /**
   * Sends a direct reply (not a room line) to one client; evicts it if its socket already holds
   * more than its hard limit.
   */
  send(client: Client, frame: string): void {
    if (client.trySend(frame)) {
      this.#stats.framesSent++;
      this.#stats.messagesDelivered++;
    } else this.evict(client, "over_budget");
  }

  /** Counts a refusal by code (the client's own refusals come through here too). */
  rejected(code: ErrorCode): void {
    this.#stats.rejected.set(code, (this.#stats.rejected.get(code) ?? 0) + 1);
  }

  /**
   * Refuses a command: an error reply (with a retry hint when given, in ms), counted, and counted
   * toward the client's flood window.
   */
  refuse(
    client: Client,
    code: ErrorCode,
    message: string,
    cid?: string,
    retryAfterMs?: number,
  ): void {
    this.rejected(code);
    this.send(client, errorLine(code, message, cid, retryAfterMs));
    client.countRefusal(code);
  }

  /**
   * Refuses a command because the store or the cluster failed: logs the failure under its source,
   * then refuses with `unavailable` and `message`.
   */
  unavailable(client: Client, error: unknown, message: string, cid?: string): void {
    this.failed(error);
    this.refuse(client, "unavailable", message, cid);
  }

  /**
   * Refuses a `say` because the commit queue is full: `rate_limited` with a hint of when to resend.
   * Not counted toward the flood window: the server's own saturation is not the client's fault,
   * and a client that ignores the hint is bounded by its socket (its replies fill its budget).
   */
  busy(client: Client, cid: string | undefined): void {
    this.rejected("rate_limited");
    this.#stats.busyRefusals++;
    const message = "Cannot say: the server is busy, send it again shortly";
    this.send(client, errorLine("rate_limited", message, cid, this.#retryAfterMs()));
  }

  /** Closes a slow consumer with 4008 and the reason for `kind`, counted and logged. */
  evict(client: Client, kind: SlowKind): void {
    if (client.closed) return;
    this.#stats.slowConsumers.set(kind, (this.#stats.slowConsumers.get(kind) ?? 0) + 1);
    this.#observers.event?.("warn", "slow_consumer", {
      name: client.name ?? "",
      address: client.address,
      reason: kind,
    });
    client.close(CloseCode.slowConsumer, SLOW_REASONS[kind], "slow_consumer");
  }

  /** Logs a failure of the store (`store_failed`) or of the cluster (`cluster_failed`). */
  failed(error: unknown): void {
    const cluster = error instanceof ClusterUnavailable;
    const text = String(cluster ? error.cause : error).slice(0, LOGGED_ERROR_CHARS);
    this.#observers.event?.("error", cluster ? "cluster_failed" : "store_failed", { error: text });
  }
}
