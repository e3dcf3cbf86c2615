/**
 * Command-line flags: one table holds each flag's name, default and help line, so `--help` always
 * shows the defaults the server really uses. Parsing is pure (args and environment in, a Config or
 * an error out) so every rule is tested without starting a process.
 */
import { parseArgs } from "node:util";
import { parseRate, type Rate } from "./rate_limit.ts";
import { MAX_HISTORY_LIMIT } from "./protocol.ts";
import type { RetentionPolicy } from "./store.ts";
import { isLogLevel, type LogFormat, type LogLevel } from "./log.ts";
import denoJson from "./deno.json" with { type: "json" };

/** The server's version, from deno.json, so `deno compile` embeds it. */
export const VERSION: string = denoJson.version;

/** Environment variables the server reads: secrets kept out of `ps`. */
export const SECRET_ENV_VARIABLES = [
  "CHAT_PASSWORD",
  "CHAT_JWT_SECRET",
  "CHAT_METRICS_TOKEN",
] as const;

/**
 * V8 flags the server runs with (`deno task start`/`dev`, the compiled executables, the bench).
 * A young generation of at most 3 × 4 MiB instead of V8's 3 × 16 MiB: connection handshakes
 * allocate fast enough to grow it to its maximum, and that reserve, not live objects, was a third
 * of the RSS per idle connection (29 KiB → 21.5 KiB at 5000; docs/performance.md). The extra
 * scavenges cost no measurable throughput: the hub's live young objects are one flush's lines.
 */
export const V8_FLAGS: readonly string[] = ["--max-semi-space-size=4"];

/** Default limits, named by meaning and unit; `--help` prints them. */
export const DEFAULTS = {
  host: "127.0.0.1",
  port: 8000,
  rateLimit: "10/s,20",
  /** Bytes a client may have waiting (socket buffer plus queue) before it is dropped as slow. */
  sendQueueBytes: 1024 * 1024,
  /** Largest inbound frame, in bytes (UTF-8). */
  maxFrameBytes: 16 * 1024,
  /** Longest message text, in characters. */
  maxTextChars: 4000,
  maxRoomsPerClient: 32,
  maxConnections: 10_000,
  /** Seconds without a pong before a peer is dropped; proxies must wait longer than this. */
  idleTimeoutSeconds: 30,
  /** Seconds a new connection has to send its hello. */
  handshakeTimeoutSeconds: 10,
  data: "chat.db",
  synchronous: "full",
  maxConnectionsPerIp: 20,
  /** New connections per second per address, and the burst allowed. */
  handshakeRate: "10/s,20",
  logFormat: "text",
  logLevel: "info",
} as const;

/** Everything the server needs to know from its flags. */
export interface Config {
  host: string;
  port: number;
  /** null when rate limiting is off. */
  rateLimit: Rate | null;
  sendQueueBytes: number;
  maxFrameBytes: number;
  maxTextChars: number;
  maxRoomsPerClient: number;
  /** Extra origins allowed to open /ws; "*" allows every origin. */
  allowOrigins: string[];
  maxConnections: number;
  idleTimeoutSeconds: number;
  handshakeTimeoutMs: number;
  /** SQLite file for history, or ":memory:" to keep nothing. */
  data: string;
  synchronous: "full" | "normal";
  retention: RetentionPolicy;
  /** PEM file paths; both set means HTTPS and WSS. */
  certFile: string | null;
  keyFile: string | null;
  /** Shared password every hello must carry, or null. */
  password: string | null;
  /** HS256 secret; when set, every hello carries a token whose subject is the name. */
  jwtSecret: string | null;
  /** Open connections per client address at most; 0 turns the limit off. */
  maxConnectionsPerIp: number;
  /** New connections per address; null turns the limit off. */
  handshakeRate: Rate | null;
  /** Take client addresses from X-Forwarded-For (only behind a proxy you run). */
  trustProxy: boolean;
  /** Bearer token /metrics requires, or null for open metrics. */
  metricsToken: string | null;
  logFormat: LogFormat;
  logLevel: LogLevel;
  /** Redis URL: history and fan-out shared by several instances; null for the embedded store. */
  redis: string | null;
}

/** What the command line asked for. */
export type ParsedArgs =
  | { kind: "run"; config: Config }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string }
  | { kind: "error"; message: string };

interface Flag {
  name: string;
  /** The value's shape in --help; empty for a switch. */
  value: string;
  help: string;
  multiple?: boolean;
}

const FLAGS: Flag[] = [
  {
    name: "host",
    value: "HOST",
    help: `address to listen on (default ${DEFAULTS.host}; 0.0.0.0 for a LAN)`,
  },
  {
    name: "port",
    value: "PORT",
    help: `port to listen on, 0 for any free port (default ${DEFAULTS.port})`,
  },
  {
    name: "data",
    value: "PATH",
    help: `SQLite file holding history (default ${DEFAULTS.data} in the working directory; ` +
      `":memory:" keeps nothing). Back it up while running with: sqlite3 chat.db "VACUUM INTO 'backup.db'"`,
  },
  {
    name: "synchronous",
    value: "full|normal",
    help: `SQLite durability (default ${DEFAULTS.synchronous}): full survives power loss, ` +
      "normal survives process crashes only and commits faster",
  },
  {
    name: "retain",
    value: "N|AGE|N,AGE",
    help:
      "history to keep per room: a message count, an age (30d, 12h, 90m), or both (default: everything)",
  },
  {
    name: "rate-limit",
    value: "R/s,B|off",
    help:
      `messages per second and burst per client (default ${DEFAULTS.rateLimit}); off for benchmarks`,
  },
  {
    name: "send-queue-bytes",
    value: "BYTES",
    help:
      `bytes waiting for a client before it is dropped as a slow consumer (default ${DEFAULTS.sendQueueBytes})`,
  },
  {
    name: "max-frame-bytes",
    value: "BYTES",
    help: `largest inbound frame (default ${DEFAULTS.maxFrameBytes})`,
  },
  {
    name: "max-text-chars",
    value: "N",
    help: `longest message text (default ${DEFAULTS.maxTextChars})`,
  },
  {
    name: "max-rooms",
    value: "N",
    help: `rooms one client may be in (default ${DEFAULTS.maxRoomsPerClient})`,
  },
  {
    name: "allow-origin",
    value: "URL,...",
    help: "extra browser origins allowed to connect, or * for any (default: same host only)",
    multiple: true,
  },
  {
    name: "max-connections",
    value: "N",
    help: `open connections at most (default ${DEFAULTS.maxConnections})`,
  },
  {
    name: "idle-timeout",
    value: "SECONDS",
    help: `drop a peer that answers no ping for this long (default ${DEFAULTS.idleTimeoutSeconds})`,
  },
  {
    name: "redis",
    value: "URL",
    help: "redis://host:port/db: share rooms, history and presence with other instances " +
      "(replaces --data; default: one instance, history in SQLite)",
  },
  {
    name: "handshake-timeout",
    value: "SECONDS",
    help: `time a new connection has to say hello (default ${DEFAULTS.handshakeTimeoutSeconds})`,
  },
  {
    name: "max-connections-per-ip",
    value: "N",
    help:
      `open connections per client address, 0 for no limit (default ${DEFAULTS.maxConnectionsPerIp})`,
  },
  {
    name: "handshake-rate",
    value: "R/s,B|off",
    help:
      `new connections per client address (default ${DEFAULTS.handshakeRate}); over it: HTTP 429`,
  },
  {
    name: "cert",
    value: "FILE",
    help: "TLS certificate chain (PEM); with --key serves https:// and wss://",
  },
  { name: "key", value: "FILE", help: "TLS private key (PEM)" },
  {
    name: "password",
    value: "TEXT",
    help: "password every client must give (or set CHAT_PASSWORD, which keeps it out of ps)",
  },
  {
    name: "jwt-secret",
    value: "TEXT",
    help: "HS256 secret (or CHAT_JWT_SECRET): clients sign in with a token whose sub is their name",
  },
  {
    name: "trust-proxy",
    value: "",
    help: "take client addresses from X-Forwarded-For; only behind a reverse proxy you run",
  },
  {
    name: "metrics-token",
    value: "TEXT",
    help: "require Authorization: Bearer TEXT on /metrics (or CHAT_METRICS_TOKEN; default: open)",
  },
  {
    name: "log-format",
    value: "text|json",
    help: `log lines for people or one JSON object per line (default ${DEFAULTS.logFormat})`,
  },
  {
    name: "log-level",
    value: "LEVEL",
    help: `debug, info, warn or error (default ${DEFAULTS.logLevel})`,
  },
];

/** The limits a welcome reports, so clients can respect them before the server has to refuse. */
export function welcomeLimits(config: Config): Record<string, unknown> {
  return {
    maxTextChars: config.maxTextChars,
    maxFrameBytes: config.maxFrameBytes,
    maxRooms: config.maxRoomsPerClient,
    historyLimit: MAX_HISTORY_LIMIT,
    rate: config.rateLimit,
    auth: config.jwtSecret !== null ? "token" : config.password !== null ? "password" : "none",
  };
}

/** The text `--help` prints. */
export function helpText(): string {
  const rows = FLAGS.map((f) => `  --${f.name}${f.value ? ` ${f.value}` : ""}\n      ${f.help}`);
  return [
    `chat ${VERSION}: a self-hosted group chat server in one executable.`,
    "",
    "Usage: chat [flags]   then open the printed address in a browser.",
    "",
    "Flags:",
    ...rows,
    "  --help       print this help",
    "  --version    print the version",
    "",
  ].join("\n");
}

function positiveInt(
  text: string | undefined,
  flag: string,
  fallback: number,
  min = 1,
): number | string {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
    return `Cannot read --${flag}: expected a whole number ≥ ${min}, got "${text}"`;
  }
  return Number(text);
}

function seconds(text: string | undefined, flag: string, fallback: number): number | string {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0)) {
    return `Cannot read --${flag}: expected seconds > 0, got "${text}"`;
  }
  return n;
}

const AGE_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `--retain`: "5000", "30d", "5000,30d" (either order). */
export function parseRetention(text: string): RetentionPolicy | null {
  const policy: RetentionPolicy = {};
  for (const part of text.split(",")) {
    const count = /^(\d+)$/.exec(part);
    const age = /^(\d+)([smhd])$/.exec(part);
    if (count && policy.maxMessagesPerRoom === undefined && Number(count[1]) >= 1) {
      policy.maxMessagesPerRoom = Number(count[1]);
    } else if (age && policy.maxAgeMs === undefined && Number(age[1]) >= 1) {
      policy.maxAgeMs = Number(age[1]) * AGE_UNITS_MS[age[2]];
    } else return null;
  }
  return policy;
}

/** Parses the command line and the CHAT_* environment; never throws and never exits. */
export function parseConfig(
  args: string[],
  env: Record<string, string | undefined> = {},
): ParsedArgs {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {
    help: { type: "boolean" },
    version: { type: "boolean" },
  };
  for (const f of FLAGS) {
    // A flag with no value shape is a switch: `--trust-proxy` alone turns it on.
    options[f.name] = f.value === ""
      ? { type: "boolean" }
      : f.multiple
      ? { type: "string", multiple: true }
      : { type: "string" };
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    return { kind: "error", message: `Cannot start: ${(e as Error).message}. See --help.` };
  }
  if (values.help) return { kind: "help", text: helpText() };
  if (values.version) return { kind: "version", text: VERSION };
  const str = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === "string" ? v : undefined;
  };

  const port = positiveInt(str("port"), "port", DEFAULTS.port, 0);
  const sendQueueBytes = positiveInt(
    str("send-queue-bytes"),
    "send-queue-bytes",
    DEFAULTS.sendQueueBytes,
  );
  const maxFrameBytes = positiveInt(
    str("max-frame-bytes"),
    "max-frame-bytes",
    DEFAULTS.maxFrameBytes,
    64,
  );
  const maxTextChars = positiveInt(str("max-text-chars"), "max-text-chars", DEFAULTS.maxTextChars);
  const maxRooms = positiveInt(str("max-rooms"), "max-rooms", DEFAULTS.maxRoomsPerClient);
  const maxConnections = positiveInt(
    str("max-connections"),
    "max-connections",
    DEFAULTS.maxConnections,
  );
  const idle = seconds(str("idle-timeout"), "idle-timeout", DEFAULTS.idleTimeoutSeconds);
  const handshake = seconds(
    str("handshake-timeout"),
    "handshake-timeout",
    DEFAULTS.handshakeTimeoutSeconds,
  );
  const perIp = positiveInt(
    str("max-connections-per-ip"),
    "max-connections-per-ip",
    DEFAULTS.maxConnectionsPerIp,
    0,
  );
  for (
    const v of [
      perIp,
      port,
      sendQueueBytes,
      maxFrameBytes,
      maxTextChars,
      maxRooms,
      maxConnections,
      idle,
      handshake,
    ]
  ) {
    if (typeof v === "string") return { kind: "error", message: v };
  }
  if ((port as number) > 65535) {
    return { kind: "error", message: "Cannot read --port: must be 0-65535" };
  }

  const rateText = str("rate-limit") ?? DEFAULTS.rateLimit;
  const rate = parseRate(rateText);
  if (rate === null) {
    return {
      kind: "error",
      message: `Cannot read --rate-limit: expected like 10/s,20 or off, got "${rateText}"`,
    };
  }
  const handshakeText = str("handshake-rate") ?? DEFAULTS.handshakeRate;
  const handshakeRate = parseRate(handshakeText);
  if (handshakeRate === null) {
    return {
      kind: "error",
      message: `Cannot read --handshake-rate: expected like 10/s,20 or off, got "${handshakeText}"`,
    };
  }
  const certFile = str("cert") ?? null;
  const keyFile = str("key") ?? null;
  if ((certFile === null) !== (keyFile === null)) {
    return { kind: "error", message: "Cannot serve TLS: give both --cert and --key" };
  }
  const redisUrl = str("redis");
  if (redisUrl !== undefined && !/^rediss?:\/\/[^\s]+$/.test(redisUrl)) {
    return {
      kind: "error",
      message: `Cannot read --redis: expected redis://host:port/db, got "${redisUrl}"`,
    };
  }
  const logFormat = str("log-format") ?? DEFAULTS.logFormat;
  if (logFormat !== "text" && logFormat !== "json") {
    return {
      kind: "error",
      message: `Cannot read --log-format: expected text or json, got "${logFormat}"`,
    };
  }
  const logLevel = str("log-level") ?? DEFAULTS.logLevel;
  if (!isLogLevel(logLevel)) {
    return {
      kind: "error",
      message: `Cannot read --log-level: expected debug, info, warn or error, got "${logLevel}"`,
    };
  }
  const secret = (flag: string, envName: string): string | null | { error: string } => {
    const v = str(flag) ?? env[envName];
    if (v === undefined) return null;
    return v.length > 0 ? v : { error: `Cannot read --${flag}: it is empty` };
  };
  const password = secret("password", "CHAT_PASSWORD");
  const jwtSecret = secret("jwt-secret", "CHAT_JWT_SECRET");
  const metricsToken = secret("metrics-token", "CHAT_METRICS_TOKEN");
  for (const v of [password, jwtSecret, metricsToken]) {
    if (v !== null && typeof v === "object") return { kind: "error", message: v.error };
  }
  const synchronous = str("synchronous") ?? DEFAULTS.synchronous;
  if (synchronous !== "full" && synchronous !== "normal") {
    return {
      kind: "error",
      message: `Cannot read --synchronous: expected full or normal, got "${synchronous}"`,
    };
  }
  const retainText = str("retain");
  const retention = retainText === undefined ? {} : parseRetention(retainText);
  if (retention === null) {
    return {
      kind: "error",
      message: `Cannot read --retain: expected like 5000, 30d or 5000,30d, got "${retainText}"`,
    };
  }
  const allowOrigins: string[] = [];
  const origins = values["allow-origin"];
  for (const entry of Array.isArray(origins) ? origins.filter((o) => typeof o === "string") : []) {
    for (const o of entry.split(",").map((s) => s.trim()).filter(Boolean)) {
      if (o !== "*" && !/^https?:\/\/[^/\s]+$/.test(o)) {
        return {
          kind: "error",
          message: `Cannot read --allow-origin: expected like https://chat.example.com, got "${o}"`,
        };
      }
      allowOrigins.push(o === "*" ? o : o.toLowerCase());
    }
  }

  return {
    kind: "run",
    config: {
      host: str("host") ?? DEFAULTS.host,
      port: port as number,
      rateLimit: rate === "off" ? null : rate,
      sendQueueBytes: sendQueueBytes as number,
      maxFrameBytes: maxFrameBytes as number,
      maxTextChars: maxTextChars as number,
      maxRoomsPerClient: maxRooms as number,
      allowOrigins,
      maxConnections: maxConnections as number,
      idleTimeoutSeconds: idle as number,
      handshakeTimeoutMs: (handshake as number) * 1000,
      data: str("data") ?? DEFAULTS.data,
      synchronous,
      retention,
      certFile,
      keyFile,
      password: password as string | null,
      jwtSecret: jwtSecret as string | null,
      maxConnectionsPerIp: perIp as number,
      handshakeRate: handshakeRate === "off" ? null : handshakeRate,
      trustProxy: values["trust-proxy"] === true,
      metricsToken: metricsToken as string | null,
      logFormat,
      logLevel,
      redis: str("redis") ?? null,
    },
  };
}
