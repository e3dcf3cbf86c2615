/**
 * The chat server put together: the hub on its store (and cluster), behind `Deno.serve` with the
 * HTTP handler, metrics, admission and logs, and one shutdown that stops them in order. main.ts
 * and the in-process test fixture start it here, so both run the same wiring.
 */
import { assets } from "./assets.ts";
import { type Config, VERSION, welcomeLimits } from "../ops/config.ts";
import type { Cluster } from "../hub/cluster.ts";
import { Hub } from "../hub.ts";
import { frameBytesForBudget } from "../hub/room.ts";
import { createHandler } from "./server.ts";
import { HostPolicy } from "./host_check.ts";
import { DamagedStoreError, SqliteStore, StoreInUseError } from "../store/sqlite_store.ts";
import type { Store } from "../store/store.ts";
import type { AccountStore } from "../store/accounts.ts";
import { Admission } from "./admission.ts";
import { type Authenticator, createAuthenticator } from "../auth/auth.ts";
import { createJwtVerifier } from "../auth/jwt.ts";
import type { Logger } from "../ops/log.ts";
import { type ChatMetrics, createChatMetrics } from "../ops/metrics.ts";
import type { PasswordHasher } from "../auth/password.ts";
import { hubObservers, renderMetrics } from "../ops/observability.ts";

/** What {@linkcode startChat} needs: the flags, the opened backends, and test overrides. */
export interface StartChatOptions {
  config: Config;
  store: Store;
  /**
   * Accounts. @default the SQLite store's own account tables (`--data`), or in memory with
   * `--data :memory:`
   */
  accounts?: AccountStore;
  /** The other instances, with `--redis`. */
  cluster?: Cluster;
  logger: Logger;
  /** The certificate and key, read from `--cert` and `--key`. @default plain HTTP */
  tls?: { cert: string; key: string } | null;
  /** Checks hellos. @default from `--password` and `--jwt-secret` */
  auth?: Authenticator;
  /** The hub's clock. @default Date.now */
  hubNow?: () => number;
  /** Hashes account passwords; tests pass cheap parameters. @default OWASP's scrypt */
  hasher?: PasswordHasher;
  /** The handler's clock, which clients' rate limits use. @default Date.now */
  clientNow?: () => number;
  /**
   * Per-address limits (`--max-connections-per-ip`, `--max-pending-per-ip`, `--handshake-rate`).
   * The in-process tests turn them off: all their clients share one address. @default true
   */
  admission?: boolean;
  /** Told the bound address once the port is open. */
  onListen?: (addr: { hostname: string; port: number; scheme: "http" | "https" }) => void;
}

/** A running chat server. */
export interface ChatServer {
  hub: Hub;
  metrics: ChatMetrics;
  /** The bound port (`--port 0` picks one). */
  port: number;
  hostname: string;
  scheme: "http" | "https";
  /**
   * The hub first (it refuses new upgrades, finishes the flush and commit, closes every socket
   * with 1001, closes the store), then the HTTP server: its own shutdown would close upgraded
   * sockets itself with its own reason and drop the last acknowledgements. Safe to call twice.
   */
  shutdown(): Promise<void>;
}

/** Why the server cannot start, as the one `Cannot start: …` line the user sees. */
export class StartError extends Error {
  override name = "StartError";
}

/** Starts the hub and listens; rejects with a {@linkcode StartError} saying why it cannot. */
export async function startChat(options: StartChatOptions): Promise<ChatServer> {
  const { config, store, cluster, logger } = options;
  const metrics = createChatMetrics();
  const jwt = config.jwtSecret === null ? null : await createJwtVerifier(config.jwtSecret);
  const accounts = options.accounts ??
    (store instanceof SqliteStore ? store.accounts() : undefined);
  const hub = new Hub({
    store,
    ...(accounts ? { accounts } : {}),
    registration: config.registration,
    accountTtlMs: config.accountTtlMs,
    maxRoomsPerClient: config.maxRoomsPerClient,
    version: VERSION,
    welcomeLimits: welcomeLimits(config),
    maxOutFrameBytes: frameBytesForBudget(config.sendQueueBytes),
    roomWindowBytes: config.roomWindowBytes,
    observers: hubObservers(metrics, logger),
    auth: options.auth ?? createAuthenticator({ password: config.password, jwt }),
    ...(options.hubNow ? { now: options.hubNow } : {}),
    ...(options.hasher ? { hasher: options.hasher } : {}),
    ...(cluster ? { cluster } : {}),
  });
  try {
    await hub.start();
  } catch (e) {
    // It reads the last minutes of history: the first read of the file, and of damaged pages.
    await hub.shutdown();
    throw new StartError(
      e instanceof DamagedStoreError
        ? storeRefusal(e)
        : `Cannot start: cannot read recent history: ${(e as Error).message}`,
    );
  }
  const tls = options.tls ?? null;
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
      onListen: ({ hostname, port }) => options.onListen?.({ hostname, port, scheme }),
    }, (req, info) => handler!(req, info));
  } catch (e) {
    // e.g. the port is taken: Deno.serve throws before listening, so nobody has connected.
    await hub.shutdown();
    throw new StartError(listenRefusal(e, config));
  }
  const { hostname, port } = server.addr;
  handler = createHandler({
    hub,
    config,
    hosts: new HostPolicy({
      scheme,
      hostname,
      port,
      configuredHost: config.host,
      allowHosts: config.allowHosts,
      publicUrl: config.publicUrl,
    }),
    assets,
    version: VERSION,
    ...(options.clientNow ? { now: options.clientNow } : {}),
    ...(options.admission === false ? {} : {
      admission: new Admission({
        maxPerAddress: config.maxConnectionsPerIp,
        maxPendingPerAddress: config.maxPendingPerIp,
        handshakeRate: config.handshakeRate,
      }),
    }),
    trustProxy: config.trustProxy,
    metrics: { render: () => renderMetrics(metrics, hub), token: config.metricsToken },
    refused: (code, address) => {
      metrics.rejected.inc({ code });
      logger.info("refused", { code, address });
    },
  });
  let stopped: Promise<void> | undefined;
  return {
    hub,
    metrics,
    port,
    hostname,
    scheme,
    shutdown: () =>
      stopped ??= (async () => {
        await hub.shutdown();
        await server.shutdown();
      })(),
  };
}

/** The `Cannot start` line for a data file that cannot be opened or read at start. */
export function storeRefusal(e: unknown): string {
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
