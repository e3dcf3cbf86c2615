/**
 * A tiny Prometheus registry (counters, gauges, histograms) rendered in the text exposition
 * format 0.0.4, and `createChatMetrics()`, the one set of series the server exports at `/metrics`.
 *
 * Hot paths call `inc()` and `observe()` once per message or flush, so both are a few number
 * operations on preallocated state and allocate nothing; all formatting happens in `render()`,
 * once per scrape.
 *
 * @example
 * ```ts
 * const metrics = createChatMetrics();
 * metrics.messagesReceived.inc();
 * metrics.disconnects.inc({ reason: "slow_consumer" });
 * new Response(metrics.registry.render(), { headers: { "content-type": METRICS_CONTENT_TYPE } });
 * ```
 */

/** The Content-Type of {@linkcode Registry.render}'s output. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
/**
 * Most label sets one labelled metric may hold. Label values must come from a closed set chosen
 * by the server (reasons, codes), never from client input; this bound turns a mistake into an
 * error instead of unbounded memory and scrape size.
 */
export const MAX_LABEL_SETS = 100;
/** Buckets for latencies from 0.1 ms to 1 s, in seconds. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** What every metric has: a name and one line of help. */
export interface MetricOptions {
  /** The series name, e.g. `chat_messages_received_total`. */
  name: string;
  /** One line saying what is counted or measured, with its unit. */
  help: string;
}

/** Options for a {@linkcode LabeledCounter}. */
export interface LabeledCounterOptions<L extends string> extends MetricOptions {
  /** The label names, e.g. `["reason"]`. */
  labelNames: readonly L[];
}

/** Options for a {@linkcode Gauge}. */
export interface GaugeOptions extends MetricOptions {
  /** Called at each scrape for the value, instead of the stored one. @default none */
  callback?: () => number;
}

/** Options for a {@linkcode Histogram}. */
export interface HistogramOptions extends MetricOptions {
  /** Upper bounds of the buckets, ascending; `+Inf` is added. @default LATENCY_BUCKETS_SECONDS */
  buckets?: readonly number[];
}

/** Something the registry can render. */
export interface Metric {
  readonly name: string;
  render(out: string[]): void;
}

/** A value that only goes up, such as messages received. */
export class Counter implements Metric {
  readonly name: string;
  readonly help: string;
  #value = 0;

  constructor(options: MetricOptions) {
    checkName(options.name);
    this.name = options.name;
    this.help = options.help;
  }

  /** Adds `by` (default 1); a plain number add on the hot path. */
  inc(by = 1): void {
    if (!(by >= 0)) throw new Error(`Cannot increment ${this.name}: ${by} is not ≥ 0`);
    this.#value += by;
  }

  /** The current count. */
  get value(): number {
    return this.#value;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, "counter");
    out.push(`${this.name} ${formatNumber(this.#value)}`);
  }
}

/** One label set of a labelled counter and its count. */
interface Series {
  readonly labels: string;
  value: number;
}

/**
 * A counter split by labels, such as disconnects by reason; keeps one series per label set.
 * On a hot path, hoist the label object to a constant (`const SLOW = { reason: "slow_consumer" }`)
 * so the call allocates nothing.
 */
export class LabeledCounter<L extends string> implements Metric {
  readonly name: string;
  readonly help: string;
  readonly #labelNames: readonly L[];
  /** Series by label values; with one label the key is its value, so lookups allocate nothing. */
  readonly #series = new Map<string, Series>();

  constructor(options: LabeledCounterOptions<L>) {
    checkName(options.name);
    if (options.labelNames.length === 0) {
      throw new Error(`Cannot create ${options.name}: a labelled counter needs a label name`);
    }
    for (const label of options.labelNames) checkLabelName(options.name, label);
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = [...options.labelNames];
  }

  /** Adds `by` (default 1) to the series for `labels`, creating it at zero first if new. */
  inc(labels: Readonly<Record<L, string>>, by = 1): void {
    if (!(by >= 0)) throw new Error(`Cannot increment ${this.name}: ${by} is not ≥ 0`);
    const key = this.#key(labels);
    const series = this.#series.get(key) ?? this.#create(labels, key);
    series.value += by;
  }

  /** The count for `labels`, 0 if never incremented. */
  get(labels: Readonly<Record<L, string>>): number {
    return this.#series.get(this.#key(labels))?.value ?? 0;
  }

  #key(labels: Readonly<Record<L, string>>): string {
    const names = this.#labelNames;
    if (names.length === 1) return labels[names[0]];
    let key = labels[names[0]];
    // "\u0000" cannot collide: a value holding it would need the same value in every position.
    for (let i = 1; i < names.length; i++) key += "\u0000" + labels[names[i]];
    return key;
  }

  #create(labels: Readonly<Record<L, string>>, key: string): Series {
    for (const label of this.#labelNames) {
      if (typeof labels[label] !== "string") {
        throw new Error(`Cannot increment ${this.name}: label ${label} is missing`);
      }
    }
    if (this.#series.size >= MAX_LABEL_SETS) {
      throw new Error(
        `Cannot increment ${this.name}: over ${MAX_LABEL_SETS} label sets; label values must come from a closed set`,
      );
    }
    const rendered = this.#labelNames.map((l) => `${l}="${escapeLabelValue(labels[l])}"`).join(",");
    const series: Series = { labels: rendered, value: 0 };
    this.#series.set(key, series);
    return series;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, "counter");
    for (const s of this.#series.values()) {
      out.push(`${this.name}{${s.labels}} ${formatNumber(s.value)}`);
    }
  }
}

/** A value that goes up and down, set directly or read from a callback at scrape time. */
export class Gauge implements Metric {
  readonly name: string;
  readonly help: string;
  #value = 0;
  #callback: (() => number) | undefined;

  constructor(options: GaugeOptions) {
    checkName(options.name);
    this.name = options.name;
    this.help = options.help;
    this.#callback = options.callback;
  }

  set(value: number): void {
    this.#value = value;
  }

  inc(by = 1): void {
    this.#value += by;
  }

  dec(by = 1): void {
    this.#value -= by;
  }

  /** Reads the value from `callback` at each scrape from now on (or the stored value again, for null). */
  setCallback(callback: (() => number) | null): void {
    this.#callback = callback ?? undefined;
  }

  /** The value a scrape would show now. */
  get value(): number {
    return this.#callback ? this.#callback() : this.#value;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, "gauge");
    out.push(`${this.name} ${formatNumber(this.value)}`);
  }
}

/** Counts observations into fixed buckets, such as flush durations in seconds. */
export class Histogram implements Metric {
  readonly name: string;
  readonly help: string;
  readonly #bounds: Float64Array;
  /** Observations per bucket, not yet cumulative; the last slot is `+Inf`. */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(options: HistogramOptions) {
    checkName(options.name);
    const buckets = options.buckets ?? LATENCY_BUCKETS_SECONDS;
    if (buckets.length === 0) throw new Error(`Cannot create ${options.name}: no buckets`);
    for (let i = 0; i < buckets.length; i++) {
      if (!Number.isFinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
        throw new Error(`Cannot create ${options.name}: buckets must be finite and ascending`);
      }
    }
    this.name = options.name;
    this.help = options.help;
    this.#bounds = Float64Array.from(buckets);
    this.#counts = new Float64Array(buckets.length + 1);
  }

  /** Records one observation (seconds, for the chat histograms). */
  observe(value: number): void {
    if (value !== value) return; // NaN would poison the sum and land in the wrong bucket
    const bounds = this.#bounds;
    // A dozen buckets: a linear scan beats a binary search and keeps this branch-light.
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.#counts[i]++;
    this.#sum += value;
    this.#count++;
  }

  /** How many observations so far. */
  get count(): number {
    return this.#count;
  }

  /** The sum of all observations. */
  get sum(): number {
    return this.#sum;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, "histogram");
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += this.#counts[i];
      out.push(
        `${this.name}_bucket{le="${formatNumber(this.#bounds[i])}"} ${formatNumber(cumulative)}`,
      );
    }
    out.push(`${this.name}_bucket{le="+Inf"} ${formatNumber(this.#count)}`);
    out.push(`${this.name}_sum ${formatNumber(this.#sum)}`);
    out.push(`${this.name}_count ${formatNumber(this.#count)}`);
  }
}

/** Holds metrics by name and renders them all, in registration order, for one scrape. */
export class Registry {
  readonly #metrics = new Map<string, Metric>();

  /** Adds `metric`; two metrics may not share a name. */
  register<M extends Metric>(metric: M): M {
    if (this.#metrics.has(metric.name)) {
      throw new Error(`Cannot register metric: ${metric.name} is already registered`);
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  counter(options: MetricOptions): Counter {
    return this.register(new Counter(options));
  }

  labeledCounter<L extends string>(options: LabeledCounterOptions<L>): LabeledCounter<L> {
    return this.register(new LabeledCounter(options));
  }

  gauge(options: GaugeOptions): Gauge {
    return this.register(new Gauge(options));
  }

  histogram(options: HistogramOptions): Histogram {
    return this.register(new Histogram(options));
  }

  /** Renders every metric in the Prometheus text format 0.0.4, ending with a newline. */
  render(): string {
    const out: string[] = [];
    for (const metric of this.#metrics.values()) metric.render(out);
    return out.length === 0 ? "" : out.join("\n") + "\n";
  }
}

/** The series the chat server exports; fields are named for what the server does with them. */
export interface ChatMetrics {
  registry: Registry;
  /** `chat_connections`: open WebSocket connections that said hello. */
  connections: Gauge;
  /** `chat_rooms`: rooms that have members. */
  rooms: Gauge;
  /** `chat_messages_received_total`: say and dm commands accepted. */
  messagesReceived: Counter;
  /** `chat_messages_delivered_total`: messages queued to recipients (one per recipient). */
  messagesDelivered: Counter;
  /** `chat_frames_sent_total`: WebSocket text frames sent (one frame may carry many messages). */
  framesSent: Counter;
  /** `chat_disconnects_total{reason}`: connections closed, by reason (e.g. `slow_consumer`). */
  disconnects: LabeledCounter<"reason">;
  /** `chat_rejected_total{code}`: commands or connections refused, by error or close code. */
  rejected: LabeledCounter<"code">;
  /** `chat_flush_seconds`: time one flush takes to queue its frames on the sockets, in seconds. */
  flushSeconds: Histogram;
  /** `chat_store_commit_seconds`: time for the store to commit a batch of messages, in seconds. */
  storeCommitSeconds: Histogram;
  /** `chat_send_queue_bytes_max`: the largest send queue of any client, in bytes. */
  sendQueueBytesMax: Gauge;
  /** `chat_slow_consumers_total{kind}`: clients closed with 4008, by `behind`, `stalled`, `over_budget`. */
  slowConsumers: LabeledCounter<"kind">;
  /** `chat_busy_refusals_total`: `say` refused because the commit queue was full. */
  busyRefusals: Counter;
  /** `chat_room_log_bytes_max`: the most any room's outbound log holds for its members, in bytes. */
  roomLogBytesMax: Gauge;
  /** `chat_uptime_seconds`: seconds since `createChatMetrics` was called; computed at scrape. */
  uptimeSeconds: Gauge;
}

/** Options for {@linkcode createChatMetrics}. */
export interface ChatMetricsOptions {
  /** The clock, in ms since the epoch; uptime counts from the call. @default () => Date.now() */
  now?: () => number;
}

/** Creates a registry holding exactly the chat server's series. */
export function createChatMetrics(options: ChatMetricsOptions = {}): ChatMetrics {
  const now = options.now ?? (() => Date.now());
  const startedAt = now();
  const registry = new Registry();
  return {
    registry,
    connections: registry.gauge({
      name: "chat_connections",
      help: "Open WebSocket connections.",
    }),
    rooms: registry.gauge({ name: "chat_rooms", help: "Rooms that have at least one member." }),
    messagesReceived: registry.counter({
      name: "chat_messages_received_total",
      help: "Room and direct messages accepted from clients.",
    }),
    messagesDelivered: registry.counter({
      name: "chat_messages_delivered_total",
      help: "Messages queued for delivery, counted once per recipient.",
    }),
    framesSent: registry.counter({
      name: "chat_frames_sent_total",
      help: "WebSocket text frames sent; one frame may carry several messages.",
    }),
    disconnects: registry.labeledCounter({
      name: "chat_disconnects_total",
      help: "Connections closed, by reason.",
      labelNames: ["reason"],
    }),
    rejected: registry.labeledCounter({
      name: "chat_rejected_total",
      help: "Commands and connections refused, by error or close code.",
      labelNames: ["code"],
    }),
    flushSeconds: registry.histogram({
      name: "chat_flush_seconds",
      help:
        "Time one flush takes to queue every busy room's frame on its members' sockets, in seconds.",
      buckets: LATENCY_BUCKETS_SECONDS,
    }),
    storeCommitSeconds: registry.histogram({
      name: "chat_store_commit_seconds",
      help: "Time for the history store to commit a batch of messages, in seconds.",
      buckets: LATENCY_BUCKETS_SECONDS,
    }),
    sendQueueBytesMax: registry.gauge({
      name: "chat_send_queue_bytes_max",
      help: "Largest send queue of any connected client, in bytes.",
    }),
    slowConsumers: registry.labeledCounter({
      name: "chat_slow_consumers_total",
      help: "Clients closed as slow consumers (4008), by the rule that found them.",
      labelNames: ["kind"],
    }),
    busyRefusals: registry.counter({
      name: "chat_busy_refusals_total",
      help: "Messages refused with rate_limited because the commit queue was full.",
    }),
    roomLogBytesMax: registry.gauge({
      name: "chat_room_log_bytes_max",
      help: "Most bytes any room's outbound log holds for members behind it.",
    }),
    uptimeSeconds: registry.gauge({
      name: "chat_uptime_seconds",
      help: "Seconds since the server started.",
      callback: () => (now() - startedAt) / 1000,
    }),
  };
}

function checkName(name: string): void {
  if (!METRIC_NAME.test(name)) {
    throw new Error(`Cannot create metric: ${JSON.stringify(name)} is not a valid name`);
  }
}

function checkLabelName(metric: string, label: string): void {
  if (!LABEL_NAME.test(label) || label.startsWith("__") || label === "le") {
    throw new Error(`Cannot create ${metric}: ${JSON.stringify(label)} is not a valid label name`);
  }
}

function header(out: string[], name: string, help: string, type: string): void {
  // HELP text escapes only backslash and newline; label values also escape the double quote.
  out.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
  out.push(`# TYPE ${name} ${type}`);
}

/** Escapes a label value for the text format: `\` → `\\`, `"` → `\"`, newline → `\n`. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Formats a sample value the way Prometheus parses it (Go's ParseFloat, plus `+Inf`, `NaN`). */
function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}
