/**
 * Connects the hub to metrics and logs: timing observers feed histograms and log lines, and a scrape
 * copies the hub's plain counters into the Prometheus registry, so the hot path only adds numbers.
 */
import type { Hub, HubObservers } from "../hub.ts";
import type { Logger } from "./log.ts";
import type { ChatMetrics } from "./metrics.ts";

/**
 * How long a `store_failed` or `cluster_failed` entry is not written again with the same error, in
 * ms. A damaged room or a lost Redis fails every request the same way; the first entry says it (and
 * `store_damaged` or `redis_lost` says what to do), the next one after this carries the `count`
 * since.
 */
export const STORE_FAILED_REPEAT_MS = 60_000;
/** Most distinct errors remembered for {@linkcode STORE_FAILED_REPEAT_MS}; past this, forgotten. */
const STORE_FAILED_ERRORS_TRACKED = 100;

/** Options for {@linkcode hubObservers}. */
export interface HubObserversOptions {
  /** The clock, in ms. @default () => performance.now() */
  now?: () => number;
}

/**
 * Observers that record flush and commit times and write hub events to the log, collapsing
 * repeats of one `store_failed` or `cluster_failed` error within {@linkcode STORE_FAILED_REPEAT_MS}.
 */
export function hubObservers(
  metrics: ChatMetrics,
  logger: Logger,
  options: HubObserversOptions = {},
): HubObservers {
  const now = options.now ?? (() => performance.now());
  /** Per error text: when it was last written, and how often it happened since. */
  const repeats = new Map<string, { writtenAt: number; since: number }>();
  return {
    flushSeconds: (s) => metrics.flushSeconds.observe(s),
    commitSeconds: (s) => metrics.storeCommitSeconds.observe(s),
    event: (level, event, fields) => {
      if (event === "store_failed" || event === "cluster_failed") {
        const key = `${event} ${fields.error}`;
        const seen = repeats.get(key);
        const at = now();
        if (seen !== undefined && at - seen.writtenAt < STORE_FAILED_REPEAT_MS) {
          seen.since++;
          return;
        }
        if (seen === undefined && repeats.size >= STORE_FAILED_ERRORS_TRACKED) repeats.clear();
        repeats.set(key, { writtenAt: at, since: 0 });
        if (seen !== undefined) fields = { ...fields, count: seen.since + 1 };
      }
      logger[level](event, fields);
    },
  };
}

/** Brings the registry up to date with the hub and renders it in Prometheus text format. */
export function renderMetrics(metrics: ChatMetrics, hub: Hub): string {
  const stats = hub.stats;
  metrics.connections.set(hub.connections);
  metrics.rooms.set(hub.roomCount);
  metrics.sendQueueBytesMax.set(hub.sendQueueBytesMax());
  metrics.roomLogBytesMax.set(hub.roomLogBytesMax());
  metrics.busyRefusals.inc(stats.busyRefusals - metrics.busyRefusals.value);
  for (const [kind, n] of stats.slowConsumers) {
    metrics.slowConsumers.inc({ kind }, n - metrics.slowConsumers.get({ kind }));
  }
  // Counters only rise, so adding the difference keeps them equal to the hub's totals.
  metrics.messagesReceived.inc(stats.messagesReceived - metrics.messagesReceived.value);
  metrics.messagesDelivered.inc(stats.messagesDelivered - metrics.messagesDelivered.value);
  metrics.framesSent.inc(stats.framesSent - metrics.framesSent.value);
  for (const [reason, n] of stats.disconnects) {
    metrics.disconnects.inc({ reason }, n - metrics.disconnects.get({ reason }));
  }
  for (const [code, n] of stats.rejected) {
    metrics.rejected.inc({ code }, n - metrics.rejected.get({ code }));
  }
  return metrics.registry.render();
}
