/**
 * Opens and closes the ioredis connections that the Redis store, bus and presence share a
 * configuration for, and runs their Lua scripts.
 *
 * Every connection fails fast instead of queueing: while Redis is unreachable a command rejects at
 * once (no offline queue), a command in flight when the socket drops rejects instead of being sent
 * again after the reconnect (a resent append could store a message twice), and a command that gets
 * no answer rejects after `commandTimeoutMs` (a hung server looks like a down one). The connection
 * itself reconnects forever with a capped backoff.
 */
import { createHash } from "node:crypto";
import { Redis } from "ioredis";

export type { Redis };

/** Longest wait between two reconnect attempts, in ms. */
export const RECONNECT_MAX_DELAY_MS = 1000;
/** First reconnect delay, in ms; it doubles per failed attempt up to RECONNECT_MAX_DELAY_MS. */
export const RECONNECT_MIN_DELAY_MS = 50;

/** Options shared by every Redis connection. */
export interface RedisConnectionOptions {
  /** A command unanswered this long rejects, in ms. @default 2000 */
  commandTimeoutMs?: number;
  /** A connection attempt unanswered this long fails, in ms. @default 2000 */
  connectTimeoutMs?: number;
}

/**
 * Opens a connection to `url` (`redis://[:password@]host:port[/db]`) and resolves once it is ready.
 * Rejects if the first attempt fails, so a server started without its Redis stops at once; after
 * that the connection reconnects by itself.
 */
export async function connectRedis(
  url: string,
  options: RedisConnectionOptions = {},
): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    // With 0 retries ioredis rejects the commands in flight when the socket closes; with
    // autoResend off it never writes them again after the reconnect.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // The bus resubscribes itself, so it knows when the subscriptions are back and can resync.
    autoResubscribe: false,
    commandTimeout: options.commandTimeoutMs ?? 2000,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    retryStrategy: (attempt) =>
      Math.min(RECONNECT_MIN_DELAY_MS * 2 ** Math.max(0, attempt - 1), RECONNECT_MAX_DELAY_MS),
  });
  // Connection errors surface as rejected commands and `close` events; without a listener ioredis
  // would print every failed reconnect attempt.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (e) {
    client.disconnect();
    throw new Error(`Cannot connect to Redis at ${redactUrl(url)}: ${errorMessage(e)}`);
  }
  return client;
}

/** Longest a close waits for the client to report its socket gone, in ms. */
export const CLOSE_WAIT_MS = 1000;

/**
 * Closes `client` and resolves once its socket is gone, or after CLOSE_WAIT_MS; safe to call
 * twice. The bound matters while Redis is unreachable: a client that is between reconnect attempts
 * only cancels its retry timer on disconnect and never reports `end`, which would hold a shutdown.
 */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === "end") return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ended = new Promise<void>((resolve) => {
    client.once("end", () => resolve());
    timer = setTimeout(resolve, CLOSE_WAIT_MS);
  });
  if (client.status === "ready") {
    // QUIT lets Redis finish what was sent; a dead socket is simply dropped.
    await client.quit().catch(() => client.disconnect());
  } else {
    client.disconnect();
  }
  await ended;
  clearTimeout(timer);
}

/** A Lua script, sent by its SHA1 and reloaded when Redis has forgotten it (after a restart). */
export class Script {
  readonly text: string;
  readonly sha: string;

  constructor(text: string) {
    this.text = text;
    this.sha = createHash("sha1").update(text).digest("hex");
  }

  /** Runs the script; one round trip, or two right after Redis restarted. */
  async run(
    client: Redis,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      // EVALSHA of an unknown script does nothing, so sending the body is safe.
      if (!errorMessage(e).startsWith("NOSCRIPT")) throw e;
      return await client.eval(this.text, keys.length, ...keys, ...args);
    }
  }
}

/** The URL without its password, for error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable URL)";
  }
}

/** The message of anything thrown. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
