/**
 * Specification of the metrics registry: its output parses as Prometheus text format 0.0.4, and
 * the chat series exist with the right types and move as the server counts.
 */
import {
  Counter,
  createChatMetrics,
  Gauge,
  Histogram,
  LabeledCounter,
  MAX_LABEL_SETS,
  Registry,
} from "../ops/metrics.ts";

/** One parsed sample line. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family: its HELP, TYPE and samples. */
interface Family {
  help?: string;
  type?: string;
  samples: Sample[];
}

/**
 * A strict parser for the text exposition format 0.0.4, written from the format's description,
 * so the registry is checked against the format rather than against itself. Throws on any line a
 * Prometheus server would reject.
 */
function parseExposition(text: string): Map<string, Family> {
  if (text !== "" && !text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, f = { samples: [] });
    return f;
  };
  const metricName = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const lines = text.split("\n").slice(0, -1);
  for (const [i, line] of lines.entries()) {
    const where = `line ${i + 1} ${JSON.stringify(line)}`;
    if (line.trim() === "") continue;
    const meta = line.match(new RegExp(`^# (HELP|TYPE) (${metricName}) (.*)$`));
    if (meta) {
      const [, kind, name, rest] = meta;
      const f = family(name);
      if (kind === "HELP") {
        if (f.help !== undefined) throw new Error(`second HELP at ${where}`);
        f.help = unescape(rest, false, where);
      } else {
        if (f.type !== undefined) throw new Error(`second TYPE at ${where}`);
        if (f.samples.length > 0) throw new Error(`TYPE after samples at ${where}`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) {
          throw new Error(`bad type at ${where}`);
        }
        f.type = rest;
      }
      continue;
    }
    if (line.startsWith("#")) continue; // a plain comment
    const m = line.match(new RegExp(`^(${metricName})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`));
    if (!m) throw new Error(`unparseable sample at ${where}`);
    const [, name, labelText, valueText] = m;
    const value = parseValue(valueText, where);
    const labels = labelText === undefined ? {} : parseLabels(labelText, where);
    // Histogram samples belong to the family without the _bucket/_sum/_count suffix.
    const base = name.replace(/_(bucket|sum|count)$/, "");
    const owner = families.get(base)?.type === "histogram" ? base : name;
    const f = family(owner);
    if (f.type === undefined) throw new Error(`sample before its TYPE at ${where}`);
    f.samples.push({ name, labels, value });
  }
  return families;
}

function parseValue(text: string, where: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    throw new Error(`bad value at ${where}`);
  }
  return Number(text);
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const pair = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$)/;
  let rest = text;
  while (rest !== "") {
    const m = rest.match(pair);
    if (!m) throw new Error(`bad labels at ${where}`);
    if (m[1] in labels) throw new Error(`repeated label at ${where}`);
    labels[m[1]] = unescape(m[2], true, where);
    rest = rest.slice(m[0].length);
  }
  return labels;
}

/** Undoes the format's escapes: `\\` and `\n` everywhere, `\"` in label values only. */
function unescape(text: string, quotes: boolean, where: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    if (c === '"' && quotes) return '"';
    throw new Error(`bad escape \\${c} at ${where}`);
  });
}

function sample(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.get(name.replace(/_(bucket|sum|count)$/, "")) ?? families.get(name);
  const found = family?.samples.find((s) =>
    s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels)
  );
  if (!found) throw new Error(`no sample ${name}${JSON.stringify(labels)}`);
  return found.value;
}

function assertEquals<T>(actual: T, expected: T, what = "value"): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function assertThrows(fn: () => unknown, messagePart: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof Error) || !e.message.includes(messagePart)) {
      throw new Error(`expected an error containing "${messagePart}", got ${e}`);
    }
    return;
  }
  throw new Error(`expected an error containing "${messagePart}", got none`);
}

Deno.test("createChatMetrics defines exactly the chat series, with their types, and the output parses", () => {
  const families = parseExposition(createChatMetrics().registry.render());
  const types = Object.fromEntries([...families].map(([name, f]) => [name, f.type]));
  assertEquals(types, {
    chat_connections: "gauge",
    chat_rooms: "gauge",
    chat_messages_received_total: "counter",
    chat_messages_delivered_total: "counter",
    chat_frames_sent_total: "counter",
    chat_disconnects_total: "counter",
    chat_rejected_total: "counter",
    chat_flush_seconds: "histogram",
    chat_store_commit_seconds: "histogram",
    chat_send_queue_bytes_max: "gauge",
    chat_slow_consumers_total: "counter",
    chat_busy_refusals_total: "counter",
    chat_room_log_bytes_max: "gauge",
    chat_uptime_seconds: "gauge",
  }, "series");
  for (const [name, f] of families) {
    if (!f.help) throw new Error(`${name} has no HELP`);
  }
});

Deno.test("flush latency buckets run from 0.1 ms to 1 s", () => {
  const families = parseExposition(createChatMetrics().registry.render());
  const bounds = families.get("chat_flush_seconds")!.samples
    .filter((s) => s.name === "chat_flush_seconds_bucket")
    .map((s) => Number(s.labels.le));
  assertEquals(bounds[0], 0.0001, "first bucket");
  assertEquals(bounds.at(-2), 1, "last finite bucket");
  assertEquals(bounds.at(-1), Infinity, "last bucket");
});

Deno.test("counters move, and the rendered values follow", () => {
  const m = createChatMetrics();
  m.messagesReceived.inc();
  m.messagesReceived.inc();
  m.messagesDelivered.inc(5);
  m.framesSent.inc(2);
  m.disconnects.inc({ reason: "slow_consumer" });
  m.disconnects.inc({ reason: "slow_consumer" });
  m.disconnects.inc({ reason: "idle" });
  m.rejected.inc({ code: "rate_limited" }, 3);
  const f = parseExposition(m.registry.render());
  assertEquals(sample(f, "chat_messages_received_total"), 2);
  assertEquals(sample(f, "chat_messages_delivered_total"), 5);
  assertEquals(sample(f, "chat_frames_sent_total"), 2);
  assertEquals(sample(f, "chat_disconnects_total", { reason: "slow_consumer" }), 2);
  assertEquals(sample(f, "chat_disconnects_total", { reason: "idle" }), 1);
  assertEquals(sample(f, "chat_rejected_total", { code: "rate_limited" }), 3);
  assertEquals(m.messagesReceived.value, 2, "Counter.value");
  assertEquals(m.disconnects.get({ reason: "slow_consumer" }), 2, "LabeledCounter.get");
  assertEquals(m.disconnects.get({ reason: "never" }), 0, "LabeledCounter.get of a new label");
});

Deno.test("a labelled counter with no series yet renders only its HELP and TYPE", () => {
  const f = parseExposition(createChatMetrics().registry.render());
  assertEquals(f.get("chat_disconnects_total")!.samples, []);
});

Deno.test("histogram buckets are cumulative, end in +Inf, and carry _sum and _count", () => {
  const registry = new Registry();
  const h = registry.histogram({ name: "t_seconds", help: "t", buckets: [0.1, 0.5, 1] });
  for (const v of [0.05, 0.1, 0.3, 0.7, 5]) h.observe(v);
  const f = parseExposition(registry.render());
  const buckets = f.get("t_seconds")!.samples.filter((s) => s.name === "t_seconds_bucket");
  // A value equal to a bound counts in that bucket: le means "less than or equal".
  assertEquals(buckets.map((s) => [s.labels.le, s.value]), [["0.1", 2], ["0.5", 3], ["1", 4], [
    "+Inf",
    5,
  ]]);
  assertEquals(sample(f, "t_seconds_count"), 5);
  assertEquals(sample(f, "t_seconds_sum"), 0.05 + 0.1 + 0.3 + 0.7 + 5);
  assertEquals([h.count, h.sum], [5, 0.05 + 0.1 + 0.3 + 0.7 + 5], "getters");
});

Deno.test("a histogram ignores NaN instead of poisoning its sum", () => {
  const h = new Histogram({ name: "t", help: "t", buckets: [1] });
  h.observe(NaN);
  h.observe(0.5);
  assertEquals([h.count, h.sum], [1, 0.5]);
});

Deno.test("label values escape backslash, double quote and newline, and parse back unchanged", () => {
  const registry = new Registry();
  const c = registry.labeledCounter({ name: "odd_total", help: "odd", labelNames: ["reason"] });
  const nasty = 'back\\slash "quoted"\nnext line';
  c.inc({ reason: nasty });
  const text = registry.render();
  if (!text.includes('reason="back\\\\slash \\"quoted\\"\\nnext line"')) {
    throw new Error(`label not escaped as the format requires:\n${text}`);
  }
  assertEquals(text.split("\n").filter((l) => l.startsWith("odd_total")).length, 1, "sample lines");
  assertEquals(sample(parseExposition(text), "odd_total", { reason: nasty }), 1);
});

Deno.test("HELP text escapes backslash and newline so it stays on one line", () => {
  const registry = new Registry();
  registry.counter({ name: "h_total", help: "first\\line\nsecond" });
  const f = parseExposition(registry.render());
  assertEquals(f.get("h_total")!.help, "first\\line\nsecond");
});

Deno.test("a counter with several labels keeps one series per label set", () => {
  const registry = new Registry();
  const c = registry.labeledCounter({ name: "multi_total", help: "m", labelNames: ["a", "b"] });
  c.inc({ a: "x", b: "y" });
  c.inc({ a: "x", b: "y" });
  c.inc({ a: "x", b: "z" });
  const f = parseExposition(registry.render());
  assertEquals(sample(f, "multi_total", { a: "x", b: "y" }), 2);
  assertEquals(sample(f, "multi_total", { a: "x", b: "z" }), 1);
});

Deno.test("a gauge reports its set value, or its callback's value at scrape time", () => {
  const g = new Gauge({ name: "g", help: "g" });
  g.set(5);
  g.inc();
  g.dec(2);
  assertEquals(g.value, 4);
  let live = 7;
  g.setCallback(() => live);
  live = 9;
  const registry = new Registry();
  registry.register(g);
  assertEquals(sample(parseExposition(registry.render()), "g"), 9);
  g.setCallback(null);
  assertEquals(g.value, 4, "stored value after removing the callback");
});

Deno.test("uptime is computed from the injected clock at scrape time", () => {
  let now = 1_000_000;
  const m = createChatMetrics({ now: () => now });
  now += 12_500;
  assertEquals(sample(parseExposition(m.registry.render()), "chat_uptime_seconds"), 12.5);
});

Deno.test("special values render as +Inf, -Inf and NaN", () => {
  const registry = new Registry();
  registry.gauge({ name: "a", help: "a", callback: () => Infinity });
  registry.gauge({ name: "b", help: "b", callback: () => -Infinity });
  registry.gauge({ name: "c", help: "c", callback: () => NaN });
  const text = registry.render();
  if (!text.includes("\na +Inf\n") || !text.includes("\nb -Inf\n") || !text.includes("\nc NaN\n")) {
    throw new Error(text);
  }
  parseExposition(text);
});

Deno.test("counters refuse to go down", () => {
  assertThrows(() => new Counter({ name: "c", help: "c" }).inc(-1), "Cannot increment c");
  const l = new LabeledCounter({ name: "l", help: "l", labelNames: ["r"] });
  assertThrows(() => l.inc({ r: "x" }, -1), "Cannot increment l");
});

Deno.test("a labelled counter refuses a missing label and more than MAX_LABEL_SETS label sets", () => {
  const l = new LabeledCounter({ name: "l_total", help: "l", labelNames: ["a", "b"] });
  // @ts-expect-error: b is missing, which only untyped callers can do
  assertThrows(() => l.inc({ a: "x" }), "label b is missing");
  const one = new LabeledCounter({ name: "one_total", help: "o", labelNames: ["r"] });
  for (let i = 0; i < MAX_LABEL_SETS; i++) one.inc({ r: `v${i}` });
  one.inc({ r: "v0" }); // an existing set still counts
  assertThrows(() => one.inc({ r: "one too many" }), `over ${MAX_LABEL_SETS} label sets`);
});

Deno.test("the registry refuses duplicate and invalid names and bad buckets", () => {
  const registry = new Registry();
  registry.counter({ name: "dup_total", help: "d" });
  assertThrows(() => registry.gauge({ name: "dup_total", help: "d" }), "already registered");
  assertThrows(() => new Counter({ name: "bad-name", help: "b" }), "not a valid name");
  assertThrows(
    () => new LabeledCounter({ name: "x", help: "x", labelNames: ["__reserved"] }),
    "not a valid label name",
  );
  assertThrows(() => new Histogram({ name: "h", help: "h", buckets: [1, 0.5] }), "ascending");
  assertThrows(() => new Histogram({ name: "h", help: "h", buckets: [] }), "no buckets");
});

Deno.test("an empty registry renders nothing", () => {
  assertEquals(new Registry().render(), "");
});
