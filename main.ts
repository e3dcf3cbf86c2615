/**
 * Entry point: parses flags, wires the store, hub and HTTP handler, listens, and shuts down
 * gracefully on SIGINT or SIGTERM (a second signal, or one before it listens, exits at once).
 * Whatever keeps it from starting ends in one `Cannot start: …` line and a non-zero exit.
 */
// First, so the stop signals are caught before any other module is evaluated: see signals.ts.
import { stopSignals } from "./ops/signals.ts";
import { assets } from "./http/assets.ts";
import {
  type Config,
  parseConfig,
  SECRET_ENV_VARIABLES,
  VERSION,
  welcomeLimits,
} from "./ops/config.ts";
import type { Cluster } from "./hub/cluster.ts";
import { Hub } from "./hub.ts";
import { frameBytesForBudget } from "./hub/room.ts";
import { createHandler } from "./http/server.ts";
import { HostPolicy } from "./http/host_check.ts";
import { DamagedStoreError, SqliteStore, StoreInUseError } from "./store/sqlite_store.ts";
import { MemoryStore, type Store } from "./store/store.ts";
import { Admission } from "./http/admission.ts";
import { createAuthenticator } from "./auth/auth.ts";
import { createJwtVerifier } from "./auth/jwt.ts";
import { createLogger, type Logger } from "./ops/log.ts";
import { createChatMetrics } from "./ops/metrics.ts";
import { hubObservers, renderMetrics } from "./ops/observability.ts";

/** Longest a graceful shutdown may take before the process exits anyway, in ms. */
const SHUTDOWN_DEADLINE_MS = 5000;

/** History and, with `--redis`, the other instances; or why they cannot be opened. */
async function openBackends(
  config: Config,
  logger: Logger,
  damaged: (error: DamagedStoreError) => void,
): Promise<{ store: Store; cluster?: Cluster } | { error: string; exitCode: number }> {
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
  const [{ RedisStore }, { RedisCluster }] = await Promise.all([
    import("./redis/redis_store.ts"),
    import("./redis/redis_cluster.ts"),
  ]);
  let store: Store | undefined;
  try {
    store = await RedisStore.connect({ url: config.redis, retention: config.retention });
    const url = config.redis;
    let lostAt = 0;
    const cluster = await RedisCluster.connect(
      {
        url,
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
    return { store, cluster };
  } catch (e) {
    await store?.close();
    return { error: `Cannot start: Redis is unreachable: ${(e as Error).message}`, exitCode: 1 };
  }
}

/** The `Cannot start` line for a data file that cannot be opened or read at start. */
function storeRefusal(e: unknown): string {
  if (e instanceof StoreInUseError) {
    return `Cannot start: ${e.path} is in use by another running server (it holds a lock on ` +
      "the file); stop that server first, or give this one its own --data file";
  }
  if (e instanceof DamagedStoreError) return `Cannot start: ${e.detail}`;
  return `Cannot start: ${(e as Error).message}`;
}

/** The `Cannot start` line for a listener that cannot be opened, naming the address and the fix. */
function listenRefusal(e: unknown, config: Config): string {
  const { host: hostname, port } = config;
  const where = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  if (e instanceof Deno.errors.AddrInUse) {
    return `Cannot start: ${where} is already in use (another server, or another copy of this ` +
      "one); stop it, or choose another port with --port (--port 0 picks a free one)";
  }
  if (e instanceof Deno.errors.AddrNotAvailable) {
    return `Cannot start: cannot listen on ${where}: no interface of this machine has that ` +
      "address; check --host";
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return `Cannot start: cannot listen on ${where}: permission denied (ports below 1024 need ` +
      "privileges); choose --port 1024 or above";
  }
  if (config.certFile !== null) {
    // Deno.serve reads the certificate and key only now; their errors name neither file.
    return `Cannot start: cannot use --cert ${config.certFile} with --key ${config.keyFile}: ` +
      `${(e as Error).message}; give a PEM certificate chain and its private key`;
  }
  return `Cannot start: cannot listen on ${where}: ${(e as Error).message}`;
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
  const { store, cluster } = backends;
  starting.store = store;
  const metrics = createChatMetrics();
  const jwt = config.jwtSecret === null ? null : await createJwtVerifier(config.jwtSecret);
  const hub = new Hub({
    store,
    maxRoomsPerClient: config.maxRoomsPerClient,
    version: VERSION,
    welcomeLimits: welcomeLimits(config),
    maxOutFrameBytes: frameBytesForBudget(config.sendQueueBytes),
    roomWindowBytes: config.roomWindowBytes,
    observers: hubObservers(metrics, logger),
    auth: createAuthenticator({ password: config.password, jwt }),
    ...(cluster ? { cluster } : {}),
  });
  try {
    await hub.start();
  } catch (e) {
    // It reads the last minutes of history: the first read of the file, and of damaged pages.
    await hub.shutdown();
    console.error(
      e instanceof DamagedStoreError
        ? storeRefusal(e)
        : `Cannot start: cannot read recent history: ${(e as Error).message}`,
    );
    return 1;
  }
  const scheme = tls === null ? "http" : "https";
  // The handler needs the bound port (--port 0 picks one), known once Deno.serve returns; no
  // request can arrive before this synchronous code has run.
  // deno-lint-ignore prefer-const -- assigned once the port is bound, after Deno.serve returns
  let handler: ReturnType<typeof createHandler> | undefined;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: config.host,
      port: config.port,
      ...(tls ?? {}),
      onListen: ({ hostname, port }) => {
        console.log(listeningLine(hostname, port, scheme));
        logger.info("listening", { url: `${scheme}://${hostname}:${port}/` });
        const where = config.redis !== null
          ? "shared through redis"
          : config.data === ":memory:"
          ? "memory only"
          : `stored in ${config.data}`;
        logger.info("history", { reason: where });
      },
    }, (req, info) => handler!(req, info));
  } catch (e) {
    // e.g. the port is taken: Deno.serve throws before listening, so nobody has connected.
    await hub.shutdown();
    console.error(listenRefusal(e, config));
    return 1;
  }
  handler = createHandler({
    hub,
    config,
    hosts: new HostPolicy({
      scheme,
      hostname: server.addr.hostname,
      port: server.addr.port,
      configuredHost: config.host,
      allowHosts: config.allowHosts,
      publicUrl: config.publicUrl,
    }),
    assets,
    version: VERSION,
    admission: new Admission({
      maxPerAddress: config.maxConnectionsPerIp,
      maxPendingPerAddress: config.maxPendingPerIp,
      handshakeRate: config.handshakeRate,
    }),
    trustProxy: config.trustProxy,
    metrics: { render: () => renderMetrics(metrics, hub), token: config.metricsToken },
    refused: (code, address) => {
      metrics.rejected.inc({ code });
      logger.info("refused", { code, address });
    },
  });
  serving = true;
  stopSignals.serving(); // from here a signal shuts down gracefully

  await stopSignals.stopped;
  logger.info("shutting_down");
  const deadline = setTimeout(() => Deno.exit(0), SHUTDOWN_DEADLINE_MS);
  // The hub goes first: it refuses new upgrades (503) and hellos, finishes the current flush and
  // commit, closes every socket with 1001, then closes the store. Deno's server.shutdown() would
  // close upgraded sockets itself with its own reason and drop the last acknowledgements.
  await hub.shutdown();
  await server.shutdown();
  clearTimeout(deadline);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
