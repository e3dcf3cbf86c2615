/** Reads the server's `slow_consumer` log lines (text or JSON), to tell whom it evicted and why. */

/** Most slow-consumer lines kept per server process. */
export const MAX_SLOW_CONSUMER_EVENTS = 10_000;

/** One `slow_consumer` line: whom the server evicted, why, and when the bench saw the line. */
export interface SlowConsumerEvent {
  name: string;
  /** `behind`, `stalled` or `over_budget`; "" from servers that log no reason. */
  reason: string;
  /** `performance.now()` in the bench when the line arrived, in ms. */
  at: number;
}

const TEXT_FIELD = (key: string) => new RegExp(`\\s${key}=("(?:[^"\\\\]|\\\\.)*"|\\S+)`);
const NAME = TEXT_FIELD("name");
const REASON = TEXT_FIELD("reason");

function textField(line: string, re: RegExp): string {
  const m = line.match(re);
  if (!m) return "";
  return m[1].startsWith('"') ? JSON.parse(m[1]) : m[1];
}

/** The event in `line` when it is a `slow_consumer` log line, else undefined. */
export function parseSlowConsumer(
  line: string,
  at = performance.now(),
): SlowConsumerEvent | undefined {
  if (!line.includes("slow_consumer")) return undefined;
  if (line.startsWith("{")) {
    try {
      const entry = JSON.parse(line);
      if (entry?.event !== "slow_consumer") return undefined;
      return { name: String(entry.name ?? ""), reason: String(entry.reason ?? ""), at };
    } catch {
      return undefined;
    }
  }
  if (!/\sslow_consumer(\s|$)/.test(line)) return undefined;
  return { name: textField(line, NAME), reason: textField(line, REASON), at };
}
