/**
 * The server's logger: one line per event, as text for people or JSON for log pipelines, written
 * to stderr so stdout carries only the `Listening on ...` line.
 *
 * Fields are a closed, typed set ({@linkcode LogFields}) with deliberately no place for message
 * text, passwords, tokens or resume tokens, so a secret cannot be logged by accident: keys outside
 * the set are dropped at run time too, and `url` loses its query string and user info (where a
 * `?token=` would sit). Every value is escaped so one entry is always exactly one line.
 *
 * @example
 * ```ts
 * const log = createLogger({ format: "text", level: "info" });
 * log.info("connect", { name: "alice", address: "127.0.0.1" });
 * // 2026-11-21T14:00:00.000Z INFO  connect name=alice address=127.0.0.1
 * ```
 */

/** Severities, least severe first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** How severe an entry is; a logger drops entries below its level. */
export type LogLevel = typeof LOG_LEVELS[number];
/** `text` for people, `json` for one JSON object per line. */
export type LogFormat = "text" | "json";

/** The only fields an entry may carry; nothing here can hold chat text or a credential. */
export interface LogFields {
  /** A user name. */
  name?: string;
  room?: string;
  /** The peer's IP address. */
  address?: string;
  /** A machine-readable reason, e.g. `slow_consumer`. */
  reason?: string;
  /** An error or close code. */
  code?: string | number;
  count?: number;
  /** A duration, in milliseconds. */
  ms?: number;
  /** A URL; the query string, fragment and user info are removed before writing. */
  url?: string;
  /** An exception or a sentence; logged as `Name: message`, without its stack. */
  error?: unknown;
}

/** The field order in every entry, and the allow-list of keys that are written at all. */
const FIELD_ORDER = [
  "name",
  "room",
  "address",
  "reason",
  "code",
  "count",
  "ms",
  "url",
  "error",
] as const satisfies readonly (keyof LogFields)[];

/** Writes one event at one level. */
export type LogMethod = (event: string, fields?: LogFields) => void;

/** A logger: one method per level. */
export interface Logger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  /** Whether entries at `level` are written, to skip building costly fields. */
  enabled(level: LogLevel): boolean;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** @default "text" */
  format?: LogFormat;
  /** The least severe level written. @default "info" */
  level?: LogLevel;
  /** Receives each line, without its newline. @default a synchronous write to stderr */
  write?: (line: string) => void;
  /** The clock, in ms since the epoch. @default () => Date.now() */
  now?: () => number;
}

/** Whether `value` names a level, for parsing a `--log-level` flag. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Creates a logger; entries below `level` cost one comparison. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? "text";
  const level = options.level ?? "info";
  if (format !== "text" && format !== "json") {
    throw new Error(
      `Cannot create logger: format must be text or json, not ${JSON.stringify(format)}`,
    );
  }
  if (!isLogLevel(level)) {
    throw new Error(`Cannot create logger: level must be one of ${LOG_LEVELS.join(", ")}`);
  }
  const write = options.write ?? writeStderr;
  const now = options.now ?? (() => Date.now());
  const threshold = LOG_LEVELS.indexOf(level);
  const render = format === "json" ? jsonLine : textLine;

  const method = (at: LogLevel): LogMethod => {
    if (LOG_LEVELS.indexOf(at) < threshold) return () => {};
    return (event, fields) => write(render(new Date(now()).toISOString(), at, event, fields));
  };
  return {
    debug: method("debug"),
    info: method("info"),
    warn: method("warn"),
    error: method("error"),
    enabled: (at) => LOG_LEVELS.indexOf(at) >= threshold,
  };
}

/** The values of the allowed fields, in order, cleaned; everything else is dropped. */
function cleanFields(fields: LogFields | undefined): [string, string | number][] {
  const out: [string, string | number][] = [];
  if (fields === undefined) return out;
  for (const key of FIELD_ORDER) {
    const value = fields[key];
    if (value === undefined) continue;
    if (key === "url") out.push([key, stripUrl(String(value))]);
    else if (key === "error") out.push([key, describeError(value)]);
    else if (typeof value === "number") out.push([key, value]);
    else out.push([key, String(value)]);
  }
  return out;
}

function jsonLine(time: string, level: LogLevel, event: string, fields?: LogFields): string {
  const entry: Record<string, string | number> = { time, level, event };
  for (const [key, value] of cleanFields(fields)) entry[key] = value;
  return escapeLineBreaks(JSON.stringify(entry));
}

function textLine(time: string, level: LogLevel, event: string, fields?: LogFields): string {
  let line = `${time} ${level.toUpperCase().padEnd(5)} ${textValue(event)}`;
  for (const [key, value] of cleanFields(fields)) line += ` ${key}=${textValue(value)}`;
  return line;
}

/** Characters a text value may show bare; anything else (spaces, quotes, `=`) gets JSON quotes. */
const BARE_VALUE = /^[\p{L}\p{N}_.,:/@+%\-\[\]]+$/u;

function textValue(value: string | number): string {
  const text = typeof value === "number" ? String(value) : value;
  return BARE_VALUE.test(text) ? text : escapeLineBreaks(JSON.stringify(text));
}

/**
 * JSON.stringify escapes U+0000-U+001F but not the other characters some tools treat as line
 * ends (NEL, U+2028, U+2029) or as terminal controls (DEL, C1); they can only occur inside JSON
 * strings here, so escaping them keeps the JSON valid and the entry on one line.
 */
function escapeLineBreaks(json: string): string {
  return json.replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Removes user info, query and fragment, where credentials and tokens travel in URLs. */
function stripUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not absolute: a path, perhaps with a query; keep the part before any ? or #.
    return url.split(/[?#]/, 1)[0];
  }
  parsed.username = "";
  parsed.password = "";
  parsed.search = "";
  parsed.hash = "";
  return parsed.href;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

const encoder = new TextEncoder();

/** Writes the whole line to stderr synchronously, so entries never interleave or get lost at exit. */
function writeStderr(line: string): void {
  const bytes = encoder.encode(line + "\n");
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}
