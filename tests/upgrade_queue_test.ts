/** The queue of upgrades waiting for a pending slot (http/upgrade_queue.ts), with fake slots and timers. */
import assert from "node:assert/strict";
import { UpgradeQueue } from "../http/upgrade_queue.ts";
import { MAX_WAITING_PER_ADDRESS } from "../ops/limits.ts";

/** A queue over `max` pending slots in all, with timers a test fires by hand. */
function rig(max: number, waitMs = 1000) {
  const slots = { pending: max };
  const timers: (() => void)[] = [];
  const queue = new UpgradeQueue({
    waitMs,
    fitsAll: (extra) => slots.pending + extra < max,
    fitsAddress: () => true,
    timer: (fn) => {
      timers.push(fn);
      return () => timers.splice(timers.indexOf(fn), 1);
    },
  });
  return { queue, slots, timers };
}

Deno.test("one freed slot lets in one waiter, the first, even before it takes the slot", async () => {
  const { queue, slots } = rig(2);
  const order: string[] = [];
  const waits = ["a", "b", "c"].map((name) =>
    queue.wait("10.0.0.1").then((letIn) => order.push(`${name}:${letIn}`))
  );
  slots.pending = 1; // one hello
  queue.wake();
  queue.wake(); // a second wake before "a" took its slot lets no one else in
  await Promise.resolve();
  assert.deepEqual(order, ["a:true"]);
  assert.equal(queue.size, 2);
  queue.taken("10.0.0.1");
  slots.pending = 0; // "a" took its slot, then two more hellos
  queue.wake();
  await Promise.all(waits.slice(1));
  assert.deepEqual(order, ["a:true", "b:true", "c:true"]);
});

Deno.test("a waiter whose time runs out is told no; a full queue or a zero wait refuses at once", async () => {
  const { queue, timers } = rig(1);
  const late = queue.wait("10.0.0.1");
  timers[0]();
  assert.equal(await late, false);
  assert.equal(queue.size, 0);
  for (let i = 0; i < MAX_WAITING_PER_ADDRESS; i++) void queue.wait("10.0.0.2");
  assert.equal(await queue.wait("10.0.0.2"), false, "past the per-address bound");
  assert.equal(await rig(1, 0).queue.wait("10.0.0.3"), false, "--upgrade-wait 0");
});
