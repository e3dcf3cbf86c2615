/**
 * Entry point: parses flags, opens the store (and Redis), starts the chat server
 * (http/chat_server.ts), and shuts down gracefully on SIGINT or SIGTERM (a second signal, or one
 * before it listens, exits at once).
 * Whatever keeps it from starting ends in one `Cannot start: …` line and a non-zero exit.
 */
// First, so the stop signals are caught before any other module is evaluated: see signals.ts.
import { stopSignals } from "./ops/signals.ts";
import { type Config, parseConfig, SECRET_ENV_VARIABLES } from "./ops/config.ts";
import type { Cluster } from "./hub/cluster.ts";
import { type ChatServer, startChat, StartError, storeRefusal } from "./http/chat_server.ts";
import { DamagedStoreError, SqliteStore } from "./store/sqlite_store.ts";
import { MemoryStore, type Store } from "./store/store.ts";
import type { AccountStore } from "./store/accounts.ts";
import { createLogger, type Logger } from "./ops/log.ts";

/** Longest a graceful shutdown may take before the process exits anyway, in ms. */
const SHUTDOWN_DEADLINE_MS = 5000;

/** History and, with `--redis`, the other instances; or why they cannot be opened. */
async function openBackends(
  config: Config,
  logger: Logger,
  damaged: (error: DamagedStoreError) => void,
): Promise<
  { store: Store; cluster?: Cluster; accounts?: AccountStore } | { error: string; exitCode: number }
> {
  if (config.redis === null) {
    try {
      // SQLite on disk by default; nothing kept with `--data :memory:`.
      const store = config.data === ":memory:"
        ? new MemoryStore({ retention: config.retention })
        : SqliteStore.open(config.data, {
          synchronous: config.synchronous,
          retention: config.retention,
          onDamaged: damaged,
        });
      return { store };
    } catch (e) {
      return { error: storeRefusal(e), exitCode: 1 };
    }
  }
  if (Deno.permissions.querySync({ name: "env" }).state !== "granted") {
    // The Redis client library reads the whole environment when it loads.
    return {
      error: "Cannot start with --redis: the Redis client needs --allow-env (all variables)",
      exitCode: 2,
    };
  }
  // Loaded only here, so a single instance never loads any Redis code.
  const [{ RedisStore }, { RedisCluster }, { RedisAccountStore }] = await Promise.all([
    import("./redis/redis_store.ts"),
    import("./redis/redis_cluster.ts"),
    import("./redis/redis_accounts.ts"),
  ]);
  let store: Store | undefined;
  let accounts: AccountStore | undefined;
  try {
    // One id for both: the store stores a message only while this instance holds its sender's name.
    const id = crypto.randomUUID();
    store = await RedisStore.connect({ url: config.redis, retention: config.retention, fence: id });
    const url = config.redis;
    accounts = await RedisAccountStore.connect({ url });
    let lostAt = 0;
    const cluster = await RedisCluster.connect(
      {
        url,
        id,
        // Once per outage: the connections retry every second, silently. `url` is logged
        // without its user info, where a Redis password would sit.
        onHealth: (healthy) => {
          if (!healthy) {
            lostAt = performance.now();
            logger.warn("redis_lost", { url, reason: "unreachable, reconnecting" });
          } else {
            logger.info("redis_back", { url, ms: Math.round(performance.now() - lostAt) });
          }
        },
      },
      (e) => logger.warn("redis", { error: e }),
    );
    return { store, cluster, accounts };
  } catch (e) {
    await Promise.all([store?.close(), accounts?.close()]);
    return { error: `Cannot start: Redis is unreachable: ${(e as Error).message}`, exitCode: 1 };
  }
}

/** The address to print: the first URL on the Listening line is one a browser can open. */
function listeningLine(hostname: string, port: number, scheme: string): string {
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const note = hostname === "0.0.0.0" || hostname === "::"
    ? ` (all interfaces; open ${scheme}://localhost:${port}/)`
    : "";
  return `Listening on ${scheme}://${host}:${port}/${note}`;
}

async function main(): Promise<number> {
  // A signal during the start exits at once (signals.ts); a history file already open is closed
  // first, so it is complete on its own.
  const starting: { store?: Store } = {};
  stopSignals.onStartSignal = () => {
    if (starting.store instanceof SqliteStore) starting.store.close();
  };
  let serving = false;
  const parsed = parseConfig(
    Deno.args,
    Object.fromEntries(SECRET_ENV_VARIABLES.map((name) => [name, Deno.env.get(name)])),
  );
  if (parsed.kind === "help" || parsed.kind === "version") {
    console.log(parsed.text);
    return 0;
  }
  if (parsed.kind === "error") {
    console.error(parsed.message);
    return 2;
  }
  const config = parsed.config;
  const logger = createLogger({ format: config.logFormat, level: config.logLevel });
  let tls: { cert: string; key: string } | null = null;
  try {
    if (config.certFile !== null && config.keyFile !== null) {
      tls = {
        cert: Deno.readTextFileSync(config.certFile),
        key: Deno.readTextFileSync(config.keyFile),
      };
    }
  } catch (e) {
    console.error(`Cannot start: ${(e as Error).message}`);
    return 1;
  }
  const backends = await openBackends(config, logger, (e) => {
    // Once per room, as the store reports it: the hub's own store_failed line repeats with every
    // request. Damage found during the start is said by the Cannot start line instead.
    if (serving) logger.error("store_damaged", { room: e.room ?? undefined, error: e });
  });
  if ("error" in backends) {
    console.error(backends.error);
    return backends.exitCode;
  }
  const { store, cluster, accounts } = backends;
  starting.store = store;
  let chat: ChatServer;
  try {
    chat = await startChat({
      config,
      store,
      cluster,
      accounts,
      logger,
      tls,
      onListen: ({ hostname, port, scheme }) => {
        console.log(listeningLine(hostname, port, scheme));
        logger.info("listening", { url: `${scheme}://${hostname}:${port}/` });
        const where = config.redis !== null
          ? "shared through redis"
          : config.data === ":memory:"
          ? "memory only"
          : `stored in ${config.data}`;
        logger.info("history", { reason: where });
      },
    });
  } catch (e) {
    if (!(e instanceof StartError)) throw e;
    console.error(e.message);
    return 1;
  }
  serving = true;
  stopSignals.serving(); // from here a signal shuts down gracefully

  await stopSignals.stopped;
  logger.info("shutting_down");
  const deadline = setTimeout(() => Deno.exit(0), SHUTDOWN_DEADLINE_MS);
  await chat.shutdown();
  clearTimeout(deadline);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
