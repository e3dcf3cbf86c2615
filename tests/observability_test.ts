/** How hub events reach the log: a store error repeated by every request is written once a minute. */
import assert from "node:assert/strict";
import { createLogger } from "../ops/log.ts";
import { createChatMetrics } from "../ops/metrics.ts";
import { hubObservers, STORE_FAILED_REPEAT_MS } from "../ops/observability.ts";

/** Observers writing to `lines`, with a clock the test moves. */
function rig() {
  const lines: string[] = [];
  let time = 0;
  const logger = createLogger({ write: (line) => lines.push(line), now: () => 0 });
  const observers = hubObservers(createChatMetrics(), logger, { now: () => time });
  const fail = (error: string) => observers.event!("error", "store_failed", { error });
  return { lines, fail, advance: (ms: number) => time += ms, event: observers.event! };
}

Deno.test("hubObservers writes a repeated store_failed error once per window, then with its count", () => {
  const { lines, fail, advance } = rig();
  for (let i = 0; i < 50; i++) fail("Error: database disk image is malformed");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /ERROR store_failed error="Error: database disk image is malformed"$/);
  advance(STORE_FAILED_REPEAT_MS - 1);
  fail("Error: database disk image is malformed");
  assert.equal(lines.length, 1, "still within the window");
  advance(1);
  fail("Error: database disk image is malformed");
  assert.equal(lines.length, 2);
  assert.match(lines[1], /ERROR store_failed count=51 error="Error: database disk image/);
});

Deno.test("hubObservers writes each distinct store_failed error, and every other event each time", () => {
  const { lines, fail, event } = rig();
  fail("Error: Connection is closed.");
  fail("Error: Command timed out");
  fail("Error: Connection is closed.");
  for (let i = 0; i < 3; i++) event("warn", "slow_consumer", { name: "bob" });
  assert.deepEqual(lines.map((l) => l.split(/ +/).slice(1, 3).join(" ")), [
    "ERROR store_failed",
    "ERROR store_failed",
    "WARN slow_consumer",
    "WARN slow_consumer",
    "WARN slow_consumer",
  ]);
});
