/**
 * The HTTP handler: a plain `(Request, info) => Response` function that serves the embedded UI,
 * `/config.json` (the sign-in mode the page asks for), `/healthz`, and upgrades `/ws` to a WebSocket after checking origin and capacity. `main.ts` wraps
 * it in `Deno.serve`; tests call it with `new Request(...)` directly.
 */
import { Client, type ClientHandler, type DisconnectReason } from "../client.ts";
import type { Config } from "../ops/config.ts";
import type { Hub } from "../hub.ts";
import type { Admission } from "./admission.ts";
import { UpgradeQueue } from "./upgrade_queue.ts";
import { timingSafeEqual } from "../auth/auth.ts";
import { METRICS_CONTENT_TYPE } from "../ops/metrics.ts";
import type { HostPolicy } from "./host_check.ts";
import type { Asset } from "./assets.ts";

/** The subset of {@linkcode Config} the handler uses. */
export type HandlerConfig = Pick<
  Config,
  | "allowOrigins"
  | "maxConnections"
  | "idleTimeoutSeconds"
  | "sendQueueBytes"
  | "maxFrameBytes"
  | "maxTextChars"
  | "rateLimit"
  | "handshakeTimeoutMs"
  | "maxPendingConnections"
  | "upgradeWaitMs"
  | "memoryLimitMiB"
  | "password"
  | "jwtSecret"
  | "registration"
>;

/** Options for {@linkcode createHandler}. */
export interface HandlerOptions {
  hub: Hub;
  config: HandlerConfig;
  /** The names this server answers to: every request's Host, and /ws's Origin, must be one. */
  hosts: HostPolicy;
  /** Static files by URL path ("/" included). */
  assets: ReadonlyMap<string, Asset>;
  version: string;
  /** @default Date.now */
  now?: () => number;
  /** Per-address limits checked before upgrading. @default none */
  admission?: Admission;
  /** Take the client address from the last X-Forwarded-For entry. @default false */
  trustProxy?: boolean;
  /** Serves GET /metrics when set; `token`, when not null, is required as a Bearer token. */
  metrics?: { render: () => string; token: string | null };
  /** Hears every refused upgrade, and every request refused for its Host, for metrics and logs. */
  refused?: (code: string, address: string) => void;
  /** The process's resident memory in bytes, checked against `memoryLimitMiB` at each upgrade. */
  memory?: () => number;
}

/** Bytes in a MiB, for `--memory-limit`. */
const MIB = 1024 * 1024;

/** Where the connection came from, as Deno.serve reports it. */
export interface ConnInfo {
  remoteAddr: { hostname: string } | Deno.Addr;
}

/**
 * Content-Security-Policy: only this origin, no inline code. `connect-src 'self'` also covers
 * ws:// and wss:// to the same host (CSP Level 3).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

function text(status: number, body: string, extra: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS, ...extra },
  });
}

/** FNV-1a over UTF-16 code units, hex: a cheap, stable ETag for embedded files. */
function fnv1a(s: string): string {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  return (h1 >>> 0).toString(16).padStart(8, "0") + (h2 >>> 0).toString(16).padStart(8, "0");
}

function etagMatches(header: string | null, etag: string): boolean {
  if (header === null) return false;
  return header.split(",").some((t) => {
    const tag = t.trim().replace(/^W\//, "");
    return tag === etag || tag === "*";
  });
}

/**
 * True when the browser origin may open a socket: no Origin (not a browser), a page this server
 * serves (see {@linkcode HostPolicy.allowsOrigin}), or one listed with --allow-origin.
 */
export function originAllowed(
  origin: string | null,
  hosts: HostPolicy,
  allowed: readonly string[],
): boolean {
  if (origin === null) return true;
  if (allowed.includes("*")) return true;
  if (hosts.allowsOrigin(origin)) return true;
  const url = URL.parse(origin);
  return url !== null && allowed.includes(url.origin.toLowerCase());
}

/**
 * The authority the request was sent to: the Host header, or, without one, the authority Deno put
 * in the URL (HTTP/2's :authority; for an HTTP/1.0 request without Host, Deno's own localhost).
 */
function requestHost(req: Request): string {
  const header = req.headers.get("host");
  if (header !== null) return header;
  // Deno does not validate Host, and builds req.url from it, so req.url may not parse.
  return URL.parse(req.url)?.host ?? "";
}

/** Builds the request handler. */
export function createHandler(
  options: HandlerOptions,
): (req: Request, info?: ConnInfo) => Response | Promise<Response> {
  const { hub, config } = options;
  const now = options.now ?? Date.now;
  const startedAt = now();
  const files = new Map<string, { asset: Asset; etag: string }>();
  for (const [path, asset] of options.assets) {
    files.set(path, { asset, etag: `"${fnv1a(asset.body)}"` });
  }

  const refuse = (status: number, code: string, address: string, body: string, extra = {}) => {
    options.refused?.(code, address);
    return text(status, body, extra);
  };

  // Every upgraded socket counts from its upgrade to its close event, not to the server's close
  // call: a socket the server has closed stays open, with what Deno buffered for it, for as long
  // as its peer keeps the TCP connection and never answers the close (there is no way to drop it
  // through Deno.serve). `pending` are the sockets that have not said hello (issue 14, item 3).
  let openSockets = 0;
  const pending = new Set<Client>();
  const memory = options.memory ?? (() => Deno.memoryUsage().rss);
  /** Upgrades over a pending limit, waiting for a slot (http/upgrade_queue.ts). */
  const queue = new UpgradeQueue({
    waitMs: config.upgradeWaitMs,
    fitsAll: (extra) => pending.size + extra < config.maxPendingConnections,
    fitsAddress: (address, extra) => !(options.admission?.pendingFull(address, extra) ?? false),
  });
  /** The hub, told first when a pending client says hello. */
  const clientHandler: ClientHandler = {
    hello(client, hello) {
      if (pending.delete(client)) {
        options.admission?.greeted(client.address);
        queue.wake();
      }
      hub.hello(client, hello);
    },
    command: (client, command) => hub.command(client, command),
    rejected: (client, code) => hub.rejected(client, code),
    slow: (client, kind) => hub.slow(client, kind),
    closed: (client, why) => hub.closed(client, why),
  };

  /**
   * Upgrades `/ws` after its checks. Over a pending limit the upgrade first waits for a slot (at
   * most `--upgrade-wait`); `waited` says it has, and is refused now if there is still none.
   */
  function upgrade(
    req: Request,
    info: ConnInfo | undefined,
    waited = false,
  ): Response | Promise<Response> {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return text(400, "This address takes WebSocket connections only.\n");
    }
    // Read the peer address before upgrading: after the upgrade the request is closed.
    const address = clientAddress(req, info, options.trustProxy ?? false);
    if (!originAllowed(req.headers.get("origin"), options.hosts, config.allowOrigins)) {
      return refuse(403, "origin", address, "Cannot connect: origin not allowed.\n");
    }
    if (!hub.accepting) {
      return refuse(
        503,
        "shutting_down",
        address,
        "Cannot connect: the server is shutting down.\n",
      );
    }
    if (hub.connections >= config.maxConnections || openSockets >= config.maxConnections) {
      return refuse(503, "server_full", address, "Cannot connect: the server is full.\n", {
        "retry-after": "5",
      });
    }
    const overHere = options.admission?.pendingFull(address) ?? false;
    if (!waited && (overHere || pending.size >= config.maxPendingConnections)) {
      return queue.wait(address).then((letIn) => {
        try {
          return upgrade(req, info, true);
        } finally {
          if (letIn) queue.taken(address);
        }
      });
    }
    if (pending.size >= config.maxPendingConnections) {
      return refuse(
        503,
        "pending_full",
        address,
        "Cannot connect: too many connections have not said hello yet.\n",
        { "retry-after": "5" },
      );
    }
    if (config.memoryLimitMiB > 0 && memory() > config.memoryLimitMiB * MIB) {
      return refuse(503, "memory", address, "Cannot connect: the server is low on memory.\n", {
        "retry-after": "5",
      });
    }
    const refusal = options.admission?.admit(address) ?? null;
    if (refusal !== null) {
      const why = refusal === "handshake_rate"
        ? "too many new connections"
        : refusal === "too_many_pending"
        ? "too many connections that have not said hello"
        : "too many connections";
      return refuse(429, refusal, address, `Cannot connect: ${why} from your address.\n`, {
        "retry-after": "1",
      });
    }
    let upgraded;
    try {
      upgraded = Deno.upgradeWebSocket(req, { idleTimeout: config.idleTimeoutSeconds });
    } catch {
      options.admission?.release(address, true);
      return text(400, "Cannot upgrade: malformed WebSocket request.\n");
    }
    const { socket, response } = upgraded;
    const client = new Client(socket, clientHandler, {
      sendQueueBytes: config.sendQueueBytes,
      maxFrameBytes: config.maxFrameBytes,
      maxTextChars: config.maxTextChars,
      rate: config.rateLimit,
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      address,
      now,
    });
    openSockets++;
    pending.add(client);
    hub.add(client);
    socket.onmessage = (e) => client.receive(e.data);
    socket.onclose = (e) => {
      openSockets--;
      const wasPending = pending.delete(client);
      options.admission?.release(address, wasPending);
      if (wasPending) queue.wake();
      client.socketClosed(closeReason(e));
    };
    socket.onerror = () => {}; // a close event always follows
    return response;
  }

  return function handler(req: Request, info?: ConnInfo): Response | Promise<Response> {
    // Every request, not only /ws: a DNS-rebinding page must not read /metrics or /healthz
    // either, and a name the operator did not list is refused before anything else is looked at.
    if (!options.hosts.allowsHost(requestHost(req))) {
      return refuse(
        403,
        "host",
        clientAddress(req, info, options.trustProxy ?? false),
        "Cannot serve: this server does not answer to that Host name; " +
          "its operator can add the name with --allow-host or --public-url.\n",
      );
    }
    const url = new URL(req.url);
    if (url.pathname === "/ws") {
      if (req.method !== "GET") return text(405, "Method not allowed.\n", { allow: "GET" });
      return upgrade(req, info);
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return text(405, "Method not allowed.\n", { allow: "GET, HEAD" });
    }
    if (url.pathname === "/metrics" && options.metrics !== undefined) {
      const token = options.metrics.token;
      const given = req.headers.get("authorization") ?? "";
      if (token !== null && !timingSafeEqual(given, `Bearer ${token}`)) {
        return text(401, "Cannot read metrics: a bearer token is required.\n", {
          "www-authenticate": "Bearer",
        });
      }
      return new Response(req.method === "HEAD" ? null : options.metrics.render(), {
        headers: {
          "content-type": METRICS_CONTENT_TYPE,
          "cache-control": "no-store",
          ...SECURITY_HEADERS,
        },
      });
    }
    if (url.pathname === "/config.json") {
      // What the sign-in page needs before its first hello; whether secrets are set, never them.
      const body = JSON.stringify({
        auth: config.jwtSecret !== null ? "token" : config.password !== null ? "password" : "none",
        password: config.password !== null,
        registration: config.registration,
        maxTextChars: config.maxTextChars,
      });
      return new Response(req.method === "HEAD" ? null : body, {
        headers: {
          "content-type": "application/json",
          "cache-control": "no-store",
          ...SECURITY_HEADERS,
        },
      });
    }
    if (url.pathname === "/healthz") {
      const body = JSON.stringify({
        // Degraded: the other instances (Redis) are unreachable; sends get `unavailable`.
        status: hub.healthy ? "ok" : "degraded",
        connections: hub.connections,
        rooms: hub.roomCount,
        uptimeSeconds: Math.floor((now() - startedAt) / 1000),
        version: options.version,
      });
      return new Response(req.method === "HEAD" ? null : body, {
        headers: {
          "content-type": "application/json",
          "cache-control": "no-store",
          ...SECURITY_HEADERS,
        },
      });
    }
    const file = files.get(url.pathname);
    if (file === undefined) return text(404, "Not found.\n");
    const headers = {
      "content-type": file.asset.type,
      etag: file.etag,
      // Revalidate every time: the ETag makes that a cheap 304, and an upgrade shows at once.
      "cache-control": "no-cache",
      ...SECURITY_HEADERS,
    };
    if (etagMatches(req.headers.get("if-none-match"), file.etag)) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(req.method === "HEAD" ? null : file.asset.body, { headers });
  };
}

/**
 * The client's address: the TCP peer, or behind a trusted proxy the last X-Forwarded-For entry
 * (the one the proxy itself appended; entries before it are whatever the client claimed).
 */
export function clientAddress(
  req: Request,
  info: ConnInfo | undefined,
  trustProxy: boolean,
): string {
  if (trustProxy) {
    const forwarded = req.headers.get("x-forwarded-for");
    const last = forwarded?.split(",").at(-1)?.trim();
    if (last) return last;
  }
  return info && "hostname" in info.remoteAddr ? info.remoteAddr.hostname : "unknown";
}

/**
 * Names why a socket closed from the far side. Deno closes an idle peer with 1001 "No response
 * from ping frame."; 1006 means the connection dropped without a close frame.
 */
export function closeReason(e: { code: number; reason: string }): DisconnectReason {
  if (e.code === 1001 && /ping/i.test(e.reason)) return "idle";
  return e.code === 1006 ? "lost" : "client";
}
