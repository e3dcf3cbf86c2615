/**
 * Command-line flags: one table row per flag holds its name, default, value parser and help line.
 * The {@linkcode Config} type, `--help` and the parser all come from that table, and a test holds
 * the README's flag table to it, so no flag can be documented, defaulted or parsed in two ways.
 * Parsing is pure (args and environment in, a Config or an error out), so every rule is tested
 * without starting a process.
 */
import { parseRate, type Rate } from "../http/rate_limit.ts";
import { MAX_HISTORY_LIMIT, MAX_JOINED_MEMBERS, MAX_MEMBERS_PAGE } from "../protocol/protocol.ts";
import {
  HARD_LIMIT_FACTOR,
  MAX_PENDING_BYTES,
  MAX_PENDING_BYTES_PER_SENDER,
  MAX_PRESENCE_NAMES,
  MAX_WAITING_PER_ADDRESS,
  MAX_WAITING_UPGRADES,
  PRESENCE_BATCH_MEMBERS,
  PRESENCE_INTERVAL_MS,
  ROOM_CACHE_BYTES,
  ROOM_CACHE_MESSAGES,
  ROOM_WINDOW_BYTES,
  STALL_TIMEOUT_MS,
} from "./limits.ts";
import type { RetentionPolicy } from "../store/store.ts";
import { DEFAULT_ACCOUNT_TTL_MS } from "../store/accounts.ts";
import { LOG_LEVELS } from "./log.ts";
import { MAX_FAILURES_PER_ACCOUNT, SIGN_IN_WINDOW_MS } from "../auth/sign_in_limit.ts";
import denoJson from "../deno.json" with { type: "json" };

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
  /** Bytes a client's socket may hold unsent; room lines past it wait in the room's log. */
  sendQueueBytes: 1024 * 1024,
  /** Bytes a member may fall behind its room before it is dropped as a slow consumer. */
  roomWindowBytes: ROOM_WINDOW_BYTES,
  /** Largest inbound frame, in bytes (UTF-8). */
  maxFrameBytes: 16 * 1024,
  /** Longest message text, in characters. */
  maxTextChars: 4000,
  maxRoomsPerClient: 32,
  registration: "open",
  maxConnections: 10_000,
  /** Seconds without a pong before a peer is dropped; proxies must wait longer than this. */
  idleTimeoutSeconds: 30,
  /** Seconds a new connection has to send its hello. */
  handshakeTimeoutSeconds: 10,
  data: "chat.db",
  synchronous: "full",
  maxConnectionsPerIp: 20,
  /**
   * Connections that have not said hello yet, in all and per address. Each one can make Deno
   * buffer up to 64 MiB of a frame before the server sees it, and hold it until the peer lets go
   * (issue 14, item 3; docs/deployment.md "What a client can make the server hold").
   */
  maxPendingConnections: 64,
  maxPendingPerIp: 4,
  /** Seconds an upgrade over a pending limit waits for a slot before it is refused. */
  upgradeWaitSeconds: 5,
  /** Resident memory, in MiB, over which new upgrades get HTTP 503. */
  memoryLimitMiB: 1024,
  /** New connections per second per address, and the burst allowed. */
  handshakeRate: "10/s,20",
  logFormat: "text",
  logLevel: "info",
} as const;

/** A secret's environment variable. */
export type SecretEnvVariable = typeof SECRET_ENV_VARIABLES[number];

/** A flag's value, or why its text cannot be read ("Cannot read --port: ..."). */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Reads one occurrence of a flag. `source` is how the user gave it, `--port` or `CHAT_PASSWORD`,
 * for the error message.
 */
export type ValueParser<T> = (text: string, source: string) => Parsed<T>;

/** One row of the flag table. */
export interface Flag<T> {
  /** The flag without its dashes, as typed: `max-rooms`. */
  name: string;
  /** The value's shape in `--help` (`PORT`); null for a switch, which is given alone. */
  value: string | null;
  /** The value when the flag is not given. */
  default: T;
  /** The default as `--help` and the README's flag table show it. */
  shown: string;
  /** What the flag does, in `--help`; the default is printed after it. */
  help: string;
  parse: ValueParser<T>;
  /** Joins the values of several occurrences (lists); without it, the last occurrence wins. */
  combine?: (earlier: T, next: T) => T;
  /** The environment variable read when the flag is not given (a secret kept out of `ps`). */
  env?: SecretEnvVariable;
}

/** A row as written in the table: `shown` may be left out when it is the default's own text. */
type FlagSpec<T> = Omit<Flag<T>, "shown"> & { shown?: string };

function flag<T>(spec: FlagSpec<T>): Flag<T> {
  return { ...spec, shown: spec.shown ?? String(spec.default) };
}

/** A switch: off unless given, and given alone (`--trust-proxy`), never with a value. */
function switchFlag(name: string, help: string): Flag<boolean> {
  return { name, value: null, default: false, shown: "off", help, parse: () => ok(true) };
}

function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

function refused(source: string, detail: string): { ok: false; error: string } {
  return { ok: false, error: `Cannot read ${source}: ${detail}` };
}

/** Any text but the empty one (host names, paths and secrets are checked where they are used). */
const nonEmpty: ValueParser<string> = (text, source) =>
  text.length > 0 ? ok(text) : refused(source, "it is empty");

/** A whole number from `min` to `max`. */
function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): ValueParser<number> {
  return (text, source) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || !Number.isSafeInteger(n)) {
      return refused(source, `expected a whole number ≥ ${min}, got "${text}"`);
    }
    return n > max ? refused(source, `must be ${min}-${max}`) : ok(n);
  };
}

/** Seconds > 0, returned in `unitMs` units (1000 for milliseconds, 1 to keep seconds). */
function seconds(unitMs: number, orZero = false): ValueParser<number> {
  return (text, source) => {
    const n = Number(text);
    if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0 || (orZero && n === 0))) {
      return refused(source, `expected seconds ${orZero ? ">= 0" : "> 0"}, got "${text}"`);
    }
    return ok(n * unitMs);
  };
}

/** `R/s,B` or off (null). */
const rate: ValueParser<Rate | null> = (text, source) => {
  const r = parseRate(text);
  if (r === null) return refused(source, `expected like 10/s,20 or off, got "${text}"`);
  return ok(r === "off" ? null : r);
};

/** "a, b or c". */
function choices(values: readonly string[]): string {
  return values.length < 2
    ? values.join("")
    : `${values.slice(0, -1).join(", ")} or ${values.at(-1)}`;
}

/** One of `values`, exactly. */
function oneOf<L extends string>(values: readonly L[]): ValueParser<L> {
  return (text, source) => {
    const value = values.find((v) => v === text);
    return value === undefined
      ? refused(source, `expected ${choices(values)}, got "${text}"`)
      : ok(value);
  };
}

/** A text that may be absent: null by default. */
function optional<T>(parse: ValueParser<T>): ValueParser<T | null> {
  return parse;
}

const retention: ValueParser<RetentionPolicy> = (text, source) => {
  const policy = parseRetention(text);
  return policy === null
    ? refused(source, `expected like 5000, 30d or 5000,30d, got "${text}"`)
    : ok(policy);
};

const redisUrl: ValueParser<string> = (text, source) =>
  /^rediss?:\/\/[^\s]+$/.test(text)
    ? ok(text)
    : refused(source, `expected redis://host:port/db, got "${text}"`);

/** A comma-separated list (the flag may also be repeated); each entry read by `entry`. */
function list(entry: (item: string) => string | null, example: string): ValueParser<string[]> {
  return (text, source) => {
    const items: string[] = [];
    for (const item of text.split(",").map((s) => s.trim()).filter(Boolean)) {
      const value = entry(item);
      if (value === null) return refused(source, `expected like ${example}, got "${item}"`);
      items.push(value);
    }
    return ok(items);
  };
}

const concat = (earlier: string[], next: string[]) => [...earlier, ...next];

/** An origin for `--allow-origin`, lower-cased, or "*". */
function origin(item: string): string | null {
  if (item === "*") return item;
  return /^https?:\/\/[^/\s]+$/.test(item) ? item.toLowerCase() : null;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * A Host value for `--allow-host`: a host name, an IPv4 address or a bracketed IPv6 address,
 * with an optional port; lower-cased (IPv6 in its shortest form, as browsers send it).
 */
export function hostValue(item: string): string | null {
  const m = /^(\[[^\]]*\]|[^:]+)(?::(\d{1,5}))?$/.exec(item.toLowerCase());
  if (m === null) return null;
  const [, host, port] = m;
  if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535)) return null;
  const suffix = port === undefined ? "" : `:${port}`;
  if (host.startsWith("[")) {
    try {
      return new URL(`http://${host}/`).hostname + suffix;
    } catch {
      return null;
    }
  }
  if (IPV4.test(host)) return host + suffix;
  const labels = host.split(".");
  // An all-digit last label is a mistyped address, never a host name.
  if (host.length > 253 || !labels.every((l) => DNS_LABEL.test(l))) return null;
  return /^\d+$/.test(labels.at(-1)!) ? null : host + suffix;
}

/** `--public-url`: an http or https URL with no path, query or credentials; its origin. */
const publicUrl: ValueParser<string> = (text, source) => {
  const wrong = refused(source, `expected like https://chat.example.com, got "${text}"`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return wrong;
  }
  const bare = url.pathname === "/" && url.search === "" && url.hash === "" &&
    url.username === "" && url.password === "";
  return (url.protocol === "http:" || url.protocol === "https:") && bare && url.hostname !== ""
    ? ok(url.origin)
    : wrong;
};

/**
 * Every flag, in `--help` order; each key is the {@linkcode Config} field the flag sets.
 */
export const FLAGS = {
  host: flag({
    name: "host",
    value: "HOST",
    default: DEFAULTS.host,
    help: "address to listen on; 0.0.0.0 for a LAN",
    parse: nonEmpty,
  }),
  port: flag({
    name: "port",
    value: "PORT",
    default: DEFAULTS.port,
    help: "port to listen on, 0 for any free port",
    parse: wholeNumber(0, 65535),
  }),
  /** SQLite file for history, or ":memory:" to keep nothing. */
  data: flag({
    name: "data",
    value: "PATH",
    default: DEFAULTS.data,
    help: `SQLite file holding history, in the working directory unless a path is given; ` +
      `":memory:" keeps nothing. Back it up while running with: ` +
      `sqlite3 chat.db "VACUUM INTO 'backup.db'"`,
    parse: nonEmpty,
  }),
  synchronous: flag({
    name: "synchronous",
    value: "full|normal",
    default: DEFAULTS.synchronous,
    help: "SQLite durability: full survives power loss, normal survives process crashes only " +
      "and commits faster",
    parse: oneOf(["full", "normal"]),
  }),
  retention: flag({
    name: "retain",
    value: "N|AGE|N,AGE",
    default: {},
    shown: "everything",
    help: "history to keep per room: a message count, an age (30d, 12h, 90m), or both",
    parse: retention,
  }),
  /** null when rate limiting is off. */
  rateLimit: flag({
    name: "rate-limit",
    value: "R/s,B|off",
    default: rateOf(DEFAULTS.rateLimit),
    shown: DEFAULTS.rateLimit,
    help: "messages per second and burst per client; off for benchmarks",
    parse: rate,
  }),
  sendQueueBytes: flag({
    name: "send-queue-bytes",
    value: "BYTES",
    default: DEFAULTS.sendQueueBytes,
    help: "bytes a client's socket may hold unsent; the rest waits in the room's log",
    parse: wholeNumber(1),
  }),
  roomWindowBytes: flag({
    name: "room-window-bytes",
    value: "BYTES",
    default: DEFAULTS.roomWindowBytes,
    help: "bytes a member may fall behind its room before it is dropped as a slow consumer",
    parse: wholeNumber(1),
  }),
  maxFrameBytes: flag({
    name: "max-frame-bytes",
    value: "BYTES",
    default: DEFAULTS.maxFrameBytes,
    help: "largest inbound frame",
    parse: wholeNumber(64),
  }),
  maxTextChars: flag({
    name: "max-text-chars",
    value: "N",
    default: DEFAULTS.maxTextChars,
    help: "longest message text, in characters",
    parse: wholeNumber(1),
  }),
  registration: flag({
    name: "registration",
    value: "open|password|closed",
    default: DEFAULTS.registration,
    help: "who may make an account: open lets the first hello with a free name make it (no " +
      "setup); password also requires a password for it; closed keeps the accounts there are",
    parse: oneOf(["open", "password", "closed"]),
  }),
  accountTtlMs: flag({
    name: "account-ttl",
    value: "AGE",
    default: DEFAULT_ACCOUNT_TTL_MS,
    shown: "30d",
    help: "how long an account without a password keeps its name after its last use (30d, 12h, " +
      "90m)",
    parse: (text, source) => {
      const ms = ageMs(text);
      return ms === null
        ? refused(source, `expected an age like 30d, 12h or 90m, got "${text}"`)
        : ok(ms);
    },
  }),
  maxRoomsPerClient: flag({
    name: "max-rooms",
    value: "N",
    default: DEFAULTS.maxRoomsPerClient,
    help: "rooms one client may be in",
    parse: wholeNumber(1),
  }),
  /** Extra origins allowed to open /ws; "*" allows every origin. */
  allowOrigins: flag<string[]>({
    name: "allow-origin",
    value: "URL,...",
    default: [],
    shown: "same host only",
    help: "extra browser origins allowed to connect, or * for any; repeatable",
    parse: list(origin, "https://chat.example.com"),
    combine: concat,
  }),
  /** Extra Host values (lower-cased `host[:port]`) the server answers to. */
  allowHosts: flag<string[]>({
    name: "allow-host",
    value: "HOST[:PORT],...",
    default: [],
    shown: "the address it listens on, plus localhost names when that is loopback",
    help: "extra Host names this server answers to",
    parse: list(hostValue, "chat.example.com or chat.example.com:8443"),
    combine: concat,
  }),
  /** The origin people open (`https://chat.example.com`), behind a proxy; or null. */
  publicUrl: flag({
    name: "public-url",
    value: "URL",
    default: null,
    shown: "none",
    help: "the address people open, behind a proxy (its host is allowed, like --allow-host)",
    parse: optional(publicUrl),
  }),
  maxConnections: flag({
    name: "max-connections",
    value: "N",
    default: DEFAULTS.maxConnections,
    help: "open connections at most; over it the upgrade gets HTTP 503",
    parse: wholeNumber(1),
  }),
  idleTimeoutSeconds: flag({
    name: "idle-timeout",
    value: "SECONDS",
    default: DEFAULTS.idleTimeoutSeconds,
    help: "drop a peer that answers no ping for this long",
    parse: seconds(1),
  }),
  /** Redis URL: history and fan-out shared by several instances; null for the embedded store. */
  redis: flag({
    name: "redis",
    value: "URL",
    default: null,
    shown: "off",
    help: "redis://host:port/db: share rooms, history and presence with other instances " +
      "(replaces --data; off: one instance, history in SQLite)",
    parse: optional(redisUrl),
  }),
  /** Milliseconds a new connection has to send its hello (the flag is in seconds). */
  handshakeTimeoutMs: flag({
    name: "handshake-timeout",
    value: "SECONDS",
    default: DEFAULTS.handshakeTimeoutSeconds * 1000,
    shown: String(DEFAULTS.handshakeTimeoutSeconds),
    help: "time a new connection has to say hello",
    parse: seconds(1000),
  }),
  /** Open connections per client address at most; 0 turns the limit off. */
  maxConnectionsPerIp: flag({
    name: "max-connections-per-ip",
    value: "N",
    default: DEFAULTS.maxConnectionsPerIp,
    help: "open connections per client address, closed ones whose peer has not let go " +
      "included, 0 for no limit; over it HTTP 429",
    parse: wholeNumber(0),
  }),
  /** Connections that have not said hello yet, in all; over it the upgrade gets HTTP 503. */
  maxPendingConnections: flag({
    name: "max-pending-connections",
    value: "N",
    default: DEFAULTS.maxPendingConnections,
    help: "connections that have not said hello yet, closed ones whose peer has not let go " +
      "included; over it HTTP 503",
    parse: wholeNumber(1),
  }),
  /** The same per client address; 0 turns the limit off. */
  maxPendingPerIp: flag({
    name: "max-pending-per-ip",
    value: "N",
    default: DEFAULTS.maxPendingPerIp,
    help: "connections per client address that have not said hello yet, 0 for no limit; " +
      "over it HTTP 429",
    parse: wholeNumber(0),
  }),
  /** How long an upgrade over a pending limit waits for a slot, in ms; 0 refuses at once. */
  upgradeWaitMs: flag({
    name: "upgrade-wait",
    value: "SECONDS",
    default: DEFAULTS.upgradeWaitSeconds * 1000,
    shown: String(DEFAULTS.upgradeWaitSeconds),
    help: "time a new connection over a pending limit waits, in arrival order, for a slot " +
      "before the 503 or 429; 0 refuses at once",
    parse: seconds(1000, true),
  }),
  /** Resident memory in MiB over which upgrades are refused; 0 turns the check off. */
  memoryLimitMiB: flag({
    name: "memory-limit",
    value: "MIB",
    default: DEFAULTS.memoryLimitMiB,
    help: "resident memory (RSS) in MiB over which new connections get HTTP 503, 0 for no limit",
    parse: wholeNumber(0),
  }),
  /** New connections per address; null turns the limit off. */
  handshakeRate: flag({
    name: "handshake-rate",
    value: "R/s,B|off",
    default: rateOf(DEFAULTS.handshakeRate),
    shown: DEFAULTS.handshakeRate,
    help: "new connections per second per client address, and the burst; over it HTTP 429",
    parse: rate,
  }),
  /** PEM file paths; both set means HTTPS and WSS. */
  certFile: flag({
    name: "cert",
    value: "FILE",
    default: null,
    shown: "off",
    help: "TLS certificate chain (PEM); with --key serves https:// and wss://",
    parse: optional(nonEmpty),
  }),
  keyFile: flag({
    name: "key",
    value: "FILE",
    default: null,
    shown: "off",
    help: "TLS private key (PEM); with --cert",
    parse: optional(nonEmpty),
  }),
  /** Shared password every hello must carry, or null. */
  password: flag({
    name: "password",
    value: "TEXT",
    default: null,
    shown: "off",
    help: "password every client must give (or set CHAT_PASSWORD, which keeps it out of ps; " +
      "the flag wins)",
    parse: optional(nonEmpty),
    env: "CHAT_PASSWORD",
  }),
  /** HS256 secret; when set, every hello carries a token whose subject is the name. */
  jwtSecret: flag({
    name: "jwt-secret",
    value: "TEXT",
    default: null,
    shown: "off",
    help: "HS256 secret (or CHAT_JWT_SECRET): clients sign in with a token whose sub is their name",
    parse: optional(nonEmpty),
    env: "CHAT_JWT_SECRET",
  }),
  /** Take client addresses from the last X-Forwarded-For entry (only behind a proxy you run). */
  trustProxy: switchFlag(
    "trust-proxy",
    "take client addresses from the last X-Forwarded-For entry; only behind a reverse proxy you run",
  ),
  /** Bearer token /metrics requires, or null for open metrics. */
  metricsToken: flag({
    name: "metrics-token",
    value: "TEXT",
    default: null,
    shown: "open",
    help: "require Authorization: Bearer TEXT on /metrics (or CHAT_METRICS_TOKEN)",
    parse: optional(nonEmpty),
    env: "CHAT_METRICS_TOKEN",
  }),
  logFormat: flag({
    name: "log-format",
    value: "text|json",
    default: DEFAULTS.logFormat,
    help: "log lines (on stderr) for people, or one JSON object per line",
    parse: oneOf(["text", "json"]),
  }),
  logLevel: flag({
    name: "log-level",
    value: "LEVEL",
    default: DEFAULTS.logLevel,
    help: `the least severe entry written: ${choices(LOG_LEVELS)}`,
    parse: oneOf(LOG_LEVELS),
  }),
};

/** A rate the code itself spells (a default); a typo in it is a bug, so it throws. */
function rateOf(text: string): Rate | null {
  const r = parseRate(text);
  if (r === null) throw new Error(`Cannot read built-in rate "${text}"`);
  return r === "off" ? null : r;
}

/** The flag table's shape: each Config field's row. */
type FlagTable<T> = { readonly [K in keyof T]: Flag<T[K]> };

/** The values a flag table gives: field by field, the type of its row's default. */
type ValuesOf<F> = { -readonly [K in keyof F]: F[K] extends Flag<infer V> ? V : never };

/** Everything the server needs to know from its flags: one field per row of {@linkcode FLAGS}. */
export type Config = ValuesOf<typeof FLAGS>;

/** What the command line asked for. */
export type ParsedArgs =
  | { kind: "run"; config: Config }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string }
  | { kind: "error"; message: string };

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

/** What `--help`, the tokenizer and the README's table know of a row: all but its value's type. */
export type FlagInfo = Pick<Flag<unknown>, "name" | "value" | "shown" | "help">;

/** Every row, in `--help` order. */
export const FLAG_ROWS: readonly FlagInfo[] = Object.values(FLAGS);

/** A flag as `--help` names it: `--port PORT`, or `--trust-proxy` for a switch. */
export function flagUsage(row: Pick<FlagInfo, "name" | "value">): string {
  return row.value === null ? `--${row.name}` : `--${row.name} ${row.value}`;
}

/** The text `--help` prints. */
export function helpText(): string {
  const rows = FLAG_ROWS.map((f) => `  ${flagUsage(f)}\n      ${f.help} (default: ${f.shown})`);
  return [
    `chat ${VERSION}: a self-hosted group chat server in one executable.`,
    "",
    "Usage: chat [flags]   then open the printed address in a browser.",
    "",
    "A value follows its flag (--port 8080) or an = (--port=8080). A switch, such as",
    "--trust-proxy, is given alone and takes no value. A list flag may be repeated.",
    "",
    "Flags:",
    ...rows,
    "  --help       print this help",
    "  --version    print the version",
    "",
    "Fixed limits:",
    `  a member whose socket drains nothing for ${STALL_TIMEOUT_MS} ms while lines wait is dropped`,
    `  a reply that would leave more than ${HARD_LIMIT_FACTOR} send budgets unsent drops the client`,
    `  say is refused (rate_limited, retryAfterMs) past ${MAX_PENDING_BYTES_PER_SENDER} bytes from`,
    `  one sender or ${MAX_PENDING_BYTES} bytes in all waiting for the next commit`,
    `  joined lists at most ${MAX_JOINED_MEMBERS} members, a members page at most ${MAX_MEMBERS_PAGE}`,
    `  rooms past ${PRESENCE_BATCH_MEMBERS} members hear presence batched: one frame per`,
    `  ${PRESENCE_INTERVAL_MS} ms naming at most ${MAX_PRESENCE_NAMES} people`,
    `  at most ${MAX_WAITING_UPGRADES} upgrades wait for a pending slot, ${MAX_WAITING_PER_ADDRESS} per address`,
    `  a room keeps its last ${ROOM_CACHE_MESSAGES} messages in memory, at most ${ROOM_CACHE_BYTES} bytes of them`,
    `  after ${MAX_FAILURES_PER_ACCOUNT} wrong passwords from one address in ${
      SIGN_IN_WINDOW_MS / 60_000
    } minutes its hellos are refused`,
    "",
  ].join("\n");
}

const AGE_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An age ("30d", "12h", "90m", "20s") in ms, or null. */
function ageMs(text: string): number | null {
  const age = /^(\d+)([smhd])$/.exec(text);
  return age && Number(age[1]) >= 1 ? Number(age[1]) * AGE_UNITS_MS[age[2]] : null;
}

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

/** The command line split into flags: each flag's texts, in order ("" for a switch). */
type Given = { texts: Map<string, string[]>; help: boolean; version: boolean };

const SEE_HELP = "See --help.";

/**
 * Splits `args` by the table: `--flag value`, `--flag=value`, and switches alone. A value that
 * starts with `--` is taken for the next flag, so a forgotten value is reported, not swallowed.
 */
function tokenize(args: readonly string[]): Given | { error: string } {
  const shapes = new Map<string, string | null>(FLAG_ROWS.map((f) => [f.name, f.value]));
  shapes.set("help", null);
  shapes.set("version", null);
  const given: Given = { texts: new Map(), help: false, version: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("--") || arg === "--") {
      const what = arg.startsWith("-") && arg !== "--"
        ? `unknown flag ${arg} (every flag starts with --)`
        : `unexpected argument "${arg}" (every flag starts with --; nothing else is taken)`;
      return { error: `Cannot start: ${what}. ${SEE_HELP}` };
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const shape = shapes.get(name);
    if (shape === undefined) return { error: `Cannot start: unknown flag --${name}. ${SEE_HELP}` };
    let text: string;
    if (shape === null) {
      if (eq >= 0) {
        return {
          error: `Cannot start: --${name} takes no value; give --${name} alone to turn it on. ` +
            SEE_HELP,
        };
      }
      text = "";
    } else if (eq >= 0) {
      text = arg.slice(eq + 1);
    } else {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) {
        return {
          error: `Cannot start: --${name} needs a value (--${name} ${shape}); to give one that ` +
            `starts with --, write --${name}=VALUE. ${SEE_HELP}`,
        };
      }
      text = next;
      i++;
    }
    if (name === "help") given.help = true;
    else if (name === "version") given.version = true;
    else given.texts.set(name, [...(given.texts.get(name) ?? []), text]);
  }
  return given;
}

/** One row's value: its flag's occurrences, else its environment variable, else its default. */
function readRow<T>(
  row: Flag<T>,
  texts: readonly string[] | undefined,
  env: Record<string, string | undefined>,
): Parsed<T> {
  if (texts === undefined) {
    const fromEnv = row.env === undefined ? undefined : env[row.env];
    return fromEnv === undefined || row.env === undefined
      ? ok(row.default)
      : row.parse(fromEnv, row.env);
  }
  let value: T | undefined;
  for (const text of texts) {
    const parsed = row.parse(text, `--${row.name}`);
    if (!parsed.ok) return parsed;
    value = value !== undefined && row.combine ? row.combine(value, parsed.value) : parsed.value;
  }
  return value === undefined ? ok(row.default) : ok(value);
}

/** Reads every row of `table`; the first refusal, in table order, wins. */
function readTable<T>(
  table: FlagTable<T>,
  given: Given,
  env: Record<string, string | undefined>,
): Parsed<T> {
  const values: Partial<T> = {};
  for (const key in table) {
    const row = table[key];
    const parsed = readRow(row, given.texts.get(row.name), env);
    if (!parsed.ok) return parsed;
    values[key] = parsed.value;
  }
  return complete(table, values)
    ? ok(values)
    : { ok: false, error: "Cannot start: a flag was not read" };
}

/** Whether `values` holds a value for every row of `table` (the loop above gives each one). */
function complete<T>(table: FlagTable<T>, values: Partial<T>): values is T {
  for (const key in table) if (!(key in values)) return false;
  return true;
}

/** Parses the command line and the CHAT_* environment; never throws and never exits. */
export function parseConfig(
  args: string[],
  env: Record<string, string | undefined> = {},
): ParsedArgs {
  const given = tokenize(args);
  if ("error" in given) return { kind: "error", message: given.error };
  if (given.help) return { kind: "help", text: helpText() };
  if (given.version) return { kind: "version", text: VERSION };
  const parsed = readTable(FLAGS, given, env);
  if (!parsed.ok) return { kind: "error", message: parsed.error };
  const config = parsed.value;
  if ((config.certFile === null) !== (config.keyFile === null)) {
    return { kind: "error", message: "Cannot serve TLS: give both --cert and --key" };
  }
  return { kind: "run", config };
}
