/**
 * The flag parser, fed every flag the way a user types it: `--flag value`, `--flag=value`, and
 * switches alone, last, and before another flag. The cases are keyed by Config field, so a new
 * flag without a case here does not type-check. What a flag does to a running server is in
 * flags_test.ts.
 */
import assert from "node:assert/strict";
import {
  type Config,
  DEFAULTS,
  FLAG_ROWS,
  FLAGS,
  flagUsage,
  helpText,
  parseConfig,
  parseRetention,
  SECRET_ENV_VARIABLES,
} from "../ops/config.ts";
import { eventually } from "./helpers.ts";
import { barrier, defaultConfig, join, startServer } from "./server_fixture.ts";

const DAY_MS = 86_400_000;

/** Parses `args` (and `env`) and fails unless the result is a config to run with. */
function run(args: string[], env: Record<string, string> = {}): Config {
  const parsed = parseConfig(args, env);
  assert.equal(parsed.kind, "run", JSON.stringify(parsed));
  if (parsed.kind !== "run") throw new Error("unreachable");
  return parsed.config;
}

/** Parses `args` and returns the refusal's message; fails when they are accepted. */
function refusal(args: string[], env: Record<string, string> = {}): string {
  const parsed = parseConfig(args, env);
  assert.equal(parsed.kind, "error", `${JSON.stringify(args)} was accepted`);
  if (parsed.kind !== "error") throw new Error("unreachable");
  return parsed.message;
}

/**
 * One typical value per flag, as typed, and the field it gives. `text` null marks a switch.
 * `with` is what the flag needs beside it (--cert and --key go together).
 */
const TYPED: {
  [K in keyof Config]: {
    text: string | null;
    value: Config[K];
    with?: { args: string[]; sets: keyof Config };
  };
} = {
  host: { text: "0.0.0.0", value: "0.0.0.0" },
  port: { text: "0", value: 0 },
  data: { text: "/var/lib/chat/history.db", value: "/var/lib/chat/history.db" },
  synchronous: { text: "normal", value: "normal" },
  retention: { text: "5000,30d", value: { maxMessagesPerRoom: 5000, maxAgeMs: 30 * DAY_MS } },
  rateLimit: { text: "5/s,7", value: { perSecond: 5, burst: 7 } },
  sendQueueBytes: { text: "2048", value: 2048 },
  roomWindowBytes: { text: "65536", value: 65536 },
  maxFrameBytes: { text: "64", value: 64 },
  maxTextChars: { text: "100", value: 100 },
  registration: { text: "closed", value: "closed" },
  accountTtlMs: { text: "90m", value: 90 * 60_000 },
  maxRoomsPerClient: { text: "3", value: 3 },
  allowOrigins: {
    text: "https://A.example,http://b.example:8080",
    value: ["https://a.example", "http://b.example:8080"],
  },
  allowHosts: {
    text: "Chat.Example.com,chat.example.com:8443,10.0.0.7,[::1]:8000",
    value: ["chat.example.com", "chat.example.com:8443", "10.0.0.7", "[::1]:8000"],
  },
  publicUrl: { text: "https://Chat.Example.com/", value: "https://chat.example.com" },
  maxConnections: { text: "5", value: 5 },
  idleTimeoutSeconds: { text: "2.5", value: 2.5 },
  redis: { text: "redis://127.0.0.1:6379/0", value: "redis://127.0.0.1:6379/0" },
  handshakeTimeoutMs: { text: "1.5", value: 1500 },
  maxConnectionsPerIp: { text: "0", value: 0 },
  maxPendingConnections: { text: "8", value: 8 },
  maxPendingPerIp: { text: "0", value: 0 },
  upgradeWaitMs: { text: "0.5", value: 500 },
  memoryLimitMiB: { text: "512", value: 512 },
  handshakeRate: { text: "off", value: null },
  certFile: {
    text: "cert.pem",
    value: "cert.pem",
    with: { args: ["--key", "key.pem"], sets: "keyFile" },
  },
  keyFile: {
    text: "key.pem",
    value: "key.pem",
    with: { args: ["--cert", "cert.pem"], sets: "certFile" },
  },
  password: { text: "s3cret", value: "s3cret" },
  jwtSecret: { text: "jwt-s3cret", value: "jwt-s3cret" },
  trustProxy: { text: null, value: true },
  metricsToken: { text: "scrape-me", value: "scrape-me" },
  logFormat: { text: "json", value: "json" },
  logLevel: { text: "debug", value: "debug" },
};

/** Texts each valued flag must refuse, naming itself. */
const REFUSED: { [K in keyof Config]: string[] } = {
  host: [""],
  port: ["abc", "-1", "1.5", "70000"],
  data: [""],
  synchronous: ["FULL", "off", ""],
  retention: ["0", "30x", "5000,6000", "1d,2d", "", "5000,"],
  rateLimit: ["fast", "0/s", "10/s,0", ""],
  sendQueueBytes: ["0", "1e6", ""],
  roomWindowBytes: ["0", "8MiB", ""],
  maxFrameBytes: ["63", "10"],
  maxTextChars: ["0", "many"],
  registration: ["invite", "OPEN", ""],
  accountTtlMs: ["0d", "30", "1w", ""],
  maxRoomsPerClient: ["0", "x"],
  allowOrigins: ["evil", "https://a.example/path", "ftp://a.example"],
  allowHosts: [
    "chat.example.com/x",
    "-bad.example",
    "a..b",
    "999.1.1.1",
    "host:0",
    "host:70000",
    "[::g]",
    "http://chat.example.com",
    "user@chat.example.com",
  ],
  publicUrl: [
    "chat.example.com",
    "ftp://chat.example.com",
    "https://chat.example.com/chat",
    "https://u:p@chat.example.com",
    "https://chat.example.com/?q=1",
    "",
  ],
  maxConnections: ["0"],
  idleTimeoutSeconds: ["0", "-1", "x"],
  redis: ["http://127.0.0.1:6379", "redis://", ""],
  handshakeTimeoutMs: ["0", "ten"],
  maxConnectionsPerIp: ["-1", "x"],
  maxPendingConnections: ["0", "-1", "x"],
  maxPendingPerIp: ["-1", "1.5"],
  upgradeWaitMs: ["-1", "5s", ""],
  memoryLimitMiB: ["-1", "1G", ""],
  handshakeRate: ["1/m", "x"],
  certFile: [""],
  keyFile: [""],
  password: [""],
  jwtSecret: [""],
  trustProxy: [],
  metricsToken: [""],
  logFormat: ["xml", "JSON"],
  logLevel: ["trace", "INFO"],
};

const KEYS = Object.keys(FLAGS).filter((k): k is keyof Config => k in TYPED);

Deno.test("every flag has a typed case and refusal cases here", () => {
  assert.deepEqual(KEYS, Object.keys(FLAGS));
});

for (const key of KEYS) {
  const row = FLAGS[key];
  const { text, value } = TYPED[key];
  const beside = TYPED[key].with?.args ?? [];
  /** Another flag to type around this one. */
  const other = key === "port" ? ["--max-rooms", "9"] : ["--port", "9"];
  if (text === null) {
    Deno.test(`--${row.name} is a switch: alone, last, or followed by another flag, it is on`, () => {
      assert.equal(run([])[key], false);
      assert.equal(run([`--${row.name}`])[key], value);
      assert.equal(run(["--port", "0", `--${row.name}`])[key], value);
      const before = run([`--${row.name}`, "--port", "9"]);
      assert.deepEqual([before[key], before.port], [value, 9], "the next flag is read too");
      assert.equal(run([`--${row.name}`, `--${row.name}`])[key], value);
    });
    Deno.test(`--${row.name}=VALUE is refused: a switch takes no value`, () => {
      for (const given of ["true", "false", "1", ""]) {
        assert.equal(
          refusal([`--${row.name}=${given}`]),
          `Cannot start: --${row.name} takes no value; give --${row.name} alone to turn it on. ` +
            "See --help.",
        );
      }
    });
    continue;
  }
  Deno.test(`--${row.name} ${row.value} is read as "--${row.name} ${text}" and "--${row.name}=${text}"`, () => {
    const defaults = run([]);
    for (const args of [[`--${row.name}`, text], [`--${row.name}=${text}`]]) {
      const config = run([...args, ...beside]);
      assert.deepEqual(config[key], value, args.join(" "));
      for (const k of KEYS) {
        if (k === key || k === TYPED[key].with?.sets) continue;
        assert.deepEqual(config[k], defaults[k], `${args.join(" ")} leaves ${k} alone`);
      }
    }
    // Before another flag, and as the last one.
    assert.deepEqual(run([`--${row.name}`, text, ...other, ...beside])[key], value);
    assert.deepEqual(run([...other, ...beside, `--${row.name}`, text])[key], value);
  });
  Deno.test(`--${row.name} refuses a bad value, naming the flag`, () => {
    for (const bad of REFUSED[key]) {
      for (const args of [[`--${row.name}`, bad], [`--${row.name}=${bad}`]]) {
        const message = refusal([...args, ...beside]);
        assert.ok(message.startsWith(`Cannot read --${row.name}: `), `${args}: ${message}`);
      }
    }
  });
  Deno.test(`--${row.name} without a value is refused, last or before another flag`, () => {
    const expected = `Cannot start: --${row.name} needs a value (${flagUsage(row)}); to give ` +
      `one that starts with --, write --${row.name}=VALUE. See --help.`;
    assert.equal(refusal([...beside, `--${row.name}`]), expected);
    assert.equal(refusal([`--${row.name}`, ...other, ...beside]), expected);
  });
}

Deno.test("no flag at all gives every row's default, and the defaults are DEFAULTS", () => {
  const config = run([]);
  for (const key of KEYS) assert.deepEqual(config[key], FLAGS[key].default, key);
  assert.deepEqual(
    {
      host: config.host,
      port: config.port,
      data: config.data,
      synchronous: config.synchronous,
      sendQueueBytes: config.sendQueueBytes,
      maxFrameBytes: config.maxFrameBytes,
      maxTextChars: config.maxTextChars,
      maxRooms: config.maxRoomsPerClient,
      maxConnections: config.maxConnections,
      idle: config.idleTimeoutSeconds,
      handshakeMs: config.handshakeTimeoutMs,
      perIp: config.maxConnectionsPerIp,
      logFormat: config.logFormat,
      logLevel: config.logLevel,
    },
    {
      host: DEFAULTS.host,
      port: DEFAULTS.port,
      data: DEFAULTS.data,
      synchronous: DEFAULTS.synchronous,
      sendQueueBytes: DEFAULTS.sendQueueBytes,
      maxFrameBytes: DEFAULTS.maxFrameBytes,
      maxTextChars: DEFAULTS.maxTextChars,
      maxRooms: DEFAULTS.maxRoomsPerClient,
      maxConnections: DEFAULTS.maxConnections,
      idle: DEFAULTS.idleTimeoutSeconds,
      handshakeMs: DEFAULTS.handshakeTimeoutSeconds * 1000,
      perIp: DEFAULTS.maxConnectionsPerIp,
      logFormat: DEFAULTS.logFormat,
      logLevel: DEFAULTS.logLevel,
    },
  );
  assert.deepEqual(config.rateLimit, { perSecond: 10, burst: 20 });
  assert.deepEqual(config.handshakeRate, { perSecond: 10, burst: 20 });
  assert.deepEqual(
    [config.retention, config.allowOrigins, config.allowHosts, config.publicUrl, config.redis],
    [{}, [], [], null, null],
  );
  assert.deepEqual(
    [config.certFile, config.keyFile, config.password, config.jwtSecret, config.metricsToken],
    [null, null, null, null, null],
  );
  assert.equal(config.trustProxy, false);
});

Deno.test("a default --help shows as a value, typed back, gives the same config", () => {
  const typed = FLAG_ROWS.filter((row) =>
    ["host", "port", "data", "synchronous", "rate-limit", "send-queue-bytes"]
      .concat(["max-frame-bytes", "max-text-chars", "max-rooms", "max-connections"])
      .concat(["idle-timeout", "handshake-timeout", "max-connections-per-ip", "handshake-rate"])
      .concat(["log-format", "log-level"])
      .includes(row.name)
  );
  assert.equal(typed.length, 16);
  assert.deepEqual(run(typed.flatMap((row) => [`--${row.name}`, row.shown])), run([]));
});

Deno.test("list flags add up when repeated, and a later single value replaces an earlier one", () => {
  const config = run([
    "--allow-origin",
    "https://a.example",
    "--allow-host=a.example,b.example",
    "--allow-origin=https://b.example, *",
    "--allow-host",
    "c.example:8443",
    "--port",
    "1",
    "--port=2",
  ]);
  assert.deepEqual(config.allowOrigins, ["https://a.example", "https://b.example", "*"]);
  assert.deepEqual(config.allowHosts, ["a.example", "b.example", "c.example:8443"]);
  assert.equal(config.port, 2);
});

Deno.test("--allow-host and --public-url refuse bad values with the documented message", () => {
  assert.equal(
    refusal(["--allow-host", "chat.example.com,http://x"]),
    'Cannot read --allow-host: expected like chat.example.com or chat.example.com:8443, got "http://x"',
  );
  assert.equal(
    refusal(["--public-url", "chat.example.com"]),
    'Cannot read --public-url: expected like https://chat.example.com, got "chat.example.com"',
  );
  assert.deepEqual(
    run(["--public-url", "http://127.0.0.1:8000"]).publicUrl,
    "http://127.0.0.1:8000",
  );
  assert.deepEqual(run(["--allow-host", "[0:0::1]"]).allowHosts, ["[::1]"]);
});

Deno.test("a value that starts with -- needs the = form; one that starts with a single - does not", () => {
  assert.equal(run(["--password=--dash"]).password, "--dash");
  assert.equal(run(["--password", "-dash"]).password, "-dash");
  assert.match(refusal(["--port", "-1"]), /^Cannot read --port: /);
});

Deno.test("unknown flags, short flags and stray arguments are refused, naming them", () => {
  assert.equal(refusal(["--bogus"]), "Cannot start: unknown flag --bogus. See --help.");
  assert.equal(refusal(["--bogus=1"]), "Cannot start: unknown flag --bogus. See --help.");
  assert.match(refusal(["-p", "8000"]), /^Cannot start: unknown flag -p /);
  assert.match(refusal(["stray"]), /^Cannot start: unexpected argument "stray" /);
  assert.match(refusal(["--port", "1", "--", "x"]), /^Cannot start: unexpected argument "--" /);
  assert.match(refusal(["--help=yes"]), /^Cannot start: --help takes no value/);
});

Deno.test("--help and --version win over other flags, even bad values", () => {
  assert.deepEqual(parseConfig(["--port", "abc", "--help"]), { kind: "help", text: helpText() });
  const version = parseConfig(["--version", "--log-level", "loud"]);
  assert.equal(version.kind, "version");
});

Deno.test("--cert without --key, and --key without --cert, are refused", () => {
  const message = "Cannot serve TLS: give both --cert and --key";
  assert.equal(refusal(["--cert", "cert.pem"]), message);
  assert.equal(refusal(["--key", "key.pem"]), message);
});

Deno.test("each secret comes from its flag, else its CHAT_* variable; the flag wins", () => {
  const secrets = [
    ["password", "password", "CHAT_PASSWORD"],
    ["jwtSecret", "jwt-secret", "CHAT_JWT_SECRET"],
    ["metricsToken", "metrics-token", "CHAT_METRICS_TOKEN"],
  ] as const;
  assert.deepEqual(secrets.map(([, , env]) => env), [...SECRET_ENV_VARIABLES]);
  for (const [key, name, env] of secrets) {
    assert.equal(FLAGS[key].env, env);
    assert.equal(run([], { [env]: "from-env" })[key], "from-env", env);
    assert.equal(run([`--${name}`, "from-flag"], { [env]: "from-env" })[key], "from-flag");
    assert.equal(run([], {})[key], null);
    assert.equal(refusal([], { [env]: "" }), `Cannot read ${env}: it is empty`);
    // The flag replaces the variable entirely: an empty variable under a flag is not read.
    assert.equal(run([`--${name}=ok`], { [env]: "" })[key], "ok");
  }
  // One variable sets only its own secret.
  const config = run([], { CHAT_PASSWORD: "p" });
  assert.deepEqual([config.password, config.jwtSecret, config.metricsToken], ["p", null, null]);
});

Deno.test("parseRetention reads a count, an age, or both in either order", () => {
  assert.deepEqual(parseRetention("5000"), { maxMessagesPerRoom: 5000 });
  assert.deepEqual(parseRetention("1"), { maxMessagesPerRoom: 1 });
  assert.deepEqual(parseRetention("30d"), { maxAgeMs: 30 * DAY_MS });
  assert.deepEqual(parseRetention("12h"), { maxAgeMs: 12 * 3_600_000 });
  assert.deepEqual(parseRetention("90m"), { maxAgeMs: 90 * 60_000 });
  assert.deepEqual(parseRetention("45s"), { maxAgeMs: 45_000 });
  assert.deepEqual(parseRetention("5000,30d"), { maxMessagesPerRoom: 5000, maxAgeMs: 30 * DAY_MS });
  assert.deepEqual(parseRetention("30d,5000"), { maxMessagesPerRoom: 5000, maxAgeMs: 30 * DAY_MS });
});

Deno.test("parseRetention refuses zero, unknown units, repeats, blanks and junk", () => {
  for (
    const bad of [
      "",
      "0",
      "0d",
      "-5",
      "30w",
      "1.5d",
      "30D",
      "5000,6000",
      "1d,2h",
      "5000,",
      ",30d",
      "5000 ,30d",
      "5000,30d,1",
      "abc",
    ]
  ) {
    assert.equal(parseRetention(bad), null, JSON.stringify(bad));
  }
});

Deno.test("--help lists every flag of the table with its help line and default", () => {
  const help = helpText();
  for (const row of FLAG_ROWS) {
    assert.ok(
      help.includes(`\n  ${flagUsage(row)}\n      ${row.help} (default: ${row.shown})\n`),
      `--help shows ${flagUsage(row)} with its default ${row.shown}`,
    );
  }
  assert.equal(new Set(FLAG_ROWS.map((r) => r.name)).size, FLAG_ROWS.length, "names are unique");
});

/** The README's flag table: each row's flag cell and default cell, in order. */
async function readmeFlagTable(): Promise<{ flag: string; shown: string }[]> {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const rows: { flag: string; shown: string }[] = [];
  for (const line of readme.split("\n")) {
    if (!line.startsWith("| `--")) continue;
    // Cells split at pipes that are not escaped; `\|` inside a cell is a literal pipe.
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim().replaceAll("\\|", "|"));
    assert.equal(cells.length, 3, line);
    rows.push({ flag: cells[0].replaceAll("`", ""), shown: cells[1].replaceAll("`", "") });
  }
  return rows;
}

Deno.test("the README's flag table and --help list the same flags, in order, with the same defaults", async () => {
  assert.deepEqual(
    await readmeFlagTable(),
    FLAG_ROWS.map((row) => ({ flag: flagUsage(row), shown: row.shown })),
  );
});

/** The flags `--help` prints with a default, in order, read from the text itself. */
function helpFlagEntries(): { flag: string; shown: string }[] {
  const entries: { flag: string; shown: string }[] = [];
  const lines = helpText().split("\n");
  for (let i = 0; i + 1 < lines.length; i++) {
    const usage = /^ {2}(--\S.*)$/.exec(lines[i]);
    const detail = /^ {6}.* \(default: (.*)\)$/.exec(lines[i + 1]);
    if (usage && detail) entries.push({ flag: usage[1], shown: detail[1] });
  }
  return entries;
}

Deno.test("the README's flag table is what --help prints: the same flags, in order, with the same defaults", async () => {
  const help = helpFlagEntries();
  assert.ok(help.length >= 20, `--help lists the flags (read ${help.length})`);
  assert.deepEqual(await readmeFlagTable(), help);
});

Deno.test("--retain AGE applies on a running server: the hub's sweep removes what aged out", async () => {
  let now = Date.UTC(2026, 0, 1);
  await using server = await startServer({
    ...defaultConfig(["--retain", "1h"]),
    hubNow: () => now,
  });
  const alice = await server.connect("alice");
  await join(alice, "general");
  await barrier(alice, "general");
  now += 30 * 60_000;
  await barrier(alice, "general");
  now += 45 * 60_000; // the first message is 75 minutes old, the second 45
  server.hub.sweep();
  let readers = 0;
  await eventually("retention removed the message older than 1h, and only it", async () => {
    const bob = await server.connect(`bob${++readers}`);
    const joined = await join(bob, "general", { since: 0 });
    await bob.close();
    return joined.history.length === 1;
  });
});
