/** What the hub is made with (its options) and what it reports (counters and observers). */
import type { DisconnectReason } from "../client.ts";
import type { ErrorCode } from "../protocol/protocol.ts";
import type { SlowKind } from "./room_log.ts";
import type { Store } from "../store/store.ts";
import type { Authenticator } from "../auth/auth.ts";
import type { Cluster } from "./cluster.ts";
import type { AccountStore } from "../store/accounts.ts";
import type { Registration } from "./sessions.ts";
import type { PasswordHasher } from "../auth/password.ts";

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

/** Counters at zero. */
export function newHubStats(): HubStats {
  return {
    messagesReceived: 0,
    messagesDelivered: 0,
    framesSent: 0,
    disconnects: new Map(),
    rejected: new Map(),
    slowConsumers: new Map(),
    busyRefusals: 0,
  };
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
   * @default MAX_FRAME_OUT_BYTES (hub/room.ts)
   */
  maxOutFrameBytes?: number;
  /**
   * How far, in UTF-8 bytes, a member may fall behind its room before it is evicted (4008).
   * @default ROOM_WINDOW_BYTES (hub/room.ts)
   */
  roomWindowBytes?: number;
  /**
   * Runs `fn` after `delayMs` for the drain poll, returning a cancel function. Tests pass one that
   * runs on demand. @default setTimeout
   */
  timer?: (fn: () => void, delayMs: number) => () => void;
  /**
   * Accounts: who owns each name, their sessions and rooms.
   * @default an in-memory SQLite account store (tests; the server passes its own)
   */
  accounts?: AccountStore;
  /**
   * Hashes account passwords; tests pass one with cheap parameters.
   * @default scrypt at OWASP's parameters (auth/password.ts)
   */
  hasher?: PasswordHasher;
  /** Who may make an account (`--registration`). @default "open" */
  registration?: Registration;
  /** How long an account without a password outlives its last use, in ms. @default 30 days */
  accountTtlMs?: number;
  observers?: HubObservers;
  /** Checks credentials in the hello. @default every valid name is let in */
  auth?: Authenticator;
  /** Other instances sharing the rooms. @default none: this process is the whole chat */
  cluster?: Cluster;
}
