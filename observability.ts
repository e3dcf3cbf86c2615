/**
 * Connects the hub to metrics and logs: timing observers feed histograms and log lines, and a scrape
 * copies the hub's plain counters into the Prometheus registry, so the hot path only adds numbers.
 */
import type { Hub, HubObservers } from "./hub.ts";
import type { Logger } from "./log.ts";
import type { ChatMetrics } from "./metrics.ts";

/** Observers that record flush and commit times and write hub events to the log. */
export function hubObservers(metrics: ChatMetrics, logger: Logger): HubObservers {
  return {
    flushSeconds: (s) => metrics.flushSeconds.observe(s),
    commitSeconds: (s) => metrics.storeCommitSeconds.observe(s),
    event: (level, event, fields) => logger[level](event, fields),
  };
}

/** Brings the registry up to date with the hub and renders it in Prometheus text format. */
export function renderMetrics(metrics: ChatMetrics, hub: Hub): string {
  const stats = hub.stats;
  metrics.connections.set(hub.connections);
  metrics.rooms.set(hub.roomCount);
  metrics.sendQueueBytesMax.set(hub.sendQueueBytesMax());
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
