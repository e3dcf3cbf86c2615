/** Specification of the logger: its two formats, level filtering, and one entry per line always. */
import { createLogger, isLogLevel, type LogFields, type LoggerOptions } from "../ops/log.ts";

const NOW = Date.UTC(2026, 10, 21, 14, 0, 0);

/** A logger writing into an array, with the clock fixed at NOW. */
function capture(options: LoggerOptions = {}) {
  const lines: string[] = [];
  const log = createLogger({ now: () => NOW, write: (l) => lines.push(l), ...options });
  return { log, lines };
}

function assertEquals<T>(actual: T, expected: T, what = "value"): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}:\nexpected ${e}\n     got ${a}`);
}

Deno.test("json format writes one object per line with time, level, event and the fields", () => {
  const { log, lines } = capture({ format: "json" });
  log.info("connect", { name: "alice", address: "127.0.0.1" });
  log.warn("disconnect", { name: "alice", reason: "slow_consumer", code: 4008, ms: 12.5 });
  assertEquals(lines.map((l) => JSON.parse(l)), [
    {
      time: "2026-11-21T14:00:00.000Z",
      level: "info",
      event: "connect",
      name: "alice",
      address: "127.0.0.1",
    },
    {
      time: "2026-11-21T14:00:00.000Z",
      level: "warn",
      event: "disconnect",
      name: "alice",
      reason: "slow_consumer",
      code: 4008,
      ms: 12.5,
    },
  ]);
});

Deno.test("text format reads time, padded level, event, then key=value", () => {
  const { log, lines } = capture({ format: "text" });
  log.info("connect", { name: "alice", address: "127.0.0.1" });
  log.error("store_failed", { count: 3, error: new TypeError("disk full") });
  log.debug("hidden");
  assertEquals(lines, [
    "2026-11-21T14:00:00.000Z INFO  connect name=alice address=127.0.0.1",
    '2026-11-21T14:00:00.000Z ERROR store_failed count=3 error="TypeError: disk full"',
  ]);
});

Deno.test("entries below the level are dropped", () => {
  const { log, lines } = capture({ level: "warn", format: "json" });
  log.debug("a");
  log.info("b");
  log.warn("c");
  log.error("d");
  assertEquals(lines.map((l) => JSON.parse(l).event), ["c", "d"]);
  if (log.enabled("info") || !log.enabled("error")) {
    throw new Error("enabled() disagrees with level");
  }
});

Deno.test("the default level is info and the default format is text", () => {
  const { log, lines } = capture();
  log.debug("no");
  log.info("yes");
  assertEquals(lines, ["2026-11-21T14:00:00.000Z INFO  yes"]);
});

Deno.test("a value with spaces, quotes, = or newlines stays on one line in both formats", () => {
  const nasty = 'bob "the" builder\nINFO  forged=entry\r\u2028\u0085x=y\\';
  for (const format of ["text", "json"] as const) {
    const { log, lines } = capture({ format });
    log.warn("odd event\nname", { name: nasty, reason: "a b", room: "" });
    assertEquals(lines.length, 1, `${format} entries`);
    const line = lines[0];
    if (/[\n\r\u2028\u2029\u0085]/.test(line)) {
      throw new Error(`${format} line holds a line break: ${line}`);
    }
    if (format === "json") {
      const entry = JSON.parse(line);
      assertEquals([entry.event, entry.name, entry.reason, entry.room], [
        "odd event\nname",
        nasty,
        "a b",
        "",
      ]);
    } else {
      // Quoted values are JSON strings, so a reader can recover them exactly.
      const quoted = line.match(/ name=("(?:[^"\\]|\\.)*")/);
      if (!quoted) throw new Error(`name not quoted: ${line}`);
      assertEquals(JSON.parse(quoted[1]), nasty, "unquoted name");
      if (!line.includes(' reason="a b"') || !line.includes(' room=""')) throw new Error(line);
      if (!line.includes(' WARN  "odd event\\nname" ')) throw new Error(line);
    }
  }
});

Deno.test("fields outside the allowed set are not written, even when passed by mistake", () => {
  const { log, lines } = capture({ format: "json" });
  const sneaky = { name: "alice", text: "secret message", password: "hunter2", token: "eyJ..." };
  log.info("hello", sneaky as LogFields);
  assertEquals(JSON.parse(lines[0]), {
    time: "2026-11-21T14:00:00.000Z",
    level: "info",
    event: "hello",
    name: "alice",
  });
});

Deno.test("a url loses its query, fragment and user info", () => {
  const { log, lines } = capture({ format: "text" });
  log.info("upgrade", { url: "wss://user:pass@chat.example/ws?token=eyJhbGci#frag" });
  log.info("request", { url: "/ws?token=abc" });
  assertEquals(lines, [
    "2026-11-21T14:00:00.000Z INFO  upgrade url=wss://chat.example/ws",
    "2026-11-21T14:00:00.000Z INFO  request url=/ws",
  ]);
});

Deno.test("error accepts anything thrown", () => {
  const { log, lines } = capture({ format: "json" });
  log.error("crash", { error: new RangeError("out of range") });
  log.error("crash", { error: "plain string" });
  log.error("crash", { error: 42 });
  assertEquals(lines.map((l) => JSON.parse(l).error), [
    "RangeError: out of range",
    "plain string",
    "42",
  ]);
});

Deno.test("an unknown level or format is refused", () => {
  for (const options of [{ level: "verbose" }, { format: "xml" }]) {
    let message = "";
    try {
      createLogger(options as LoggerOptions);
    } catch (e) {
      message = (e as Error).message;
    }
    if (!message.startsWith("Cannot create logger: ")) {
      throw new Error(`got ${JSON.stringify(message)}`);
    }
  }
  assertEquals([isLogLevel("warn"), isLogLevel("verbose")], [true, false]);
});

Deno.test("by default lines go to stderr and nothing to stdout", async () => {
  const script = `import { createLogger } from ${
    JSON.stringify(new URL("../ops/log.ts", import.meta.url).href)
  };
const log = createLogger({ format: "json", level: "debug" });
log.debug("d"); log.info("i"); log.warn("w"); log.error("e");`;
  const { stdout, stderr, success } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdin: "null",
  }).output();
  if (!success) throw new Error(new TextDecoder().decode(stderr));
  assertEquals(new TextDecoder().decode(stdout), "", "stdout");
  const events = new TextDecoder().decode(stderr).trimEnd().split("\n").map((l) =>
    JSON.parse(l).event
  );
  assertEquals(events, ["d", "i", "w", "e"], "stderr");
});
