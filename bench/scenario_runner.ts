/**
 * Runs a bench scenario by name: the one module that knows which file implements each, so the
 * scenario modules need not import one another.
 */

import type { Target } from "./run.ts";
import type { ScenarioName, ScenarioOptions, ScenarioResult } from "./scenario_types.ts";
import { capacity, idle, latency, type Progress, rooms, slow } from "./scenarios.ts";
import { overload } from "./overload.ts";
import { runLargeRoom } from "./large_room.ts";

/** Runs scenario `name` against `target`. */
export function runScenario(
  name: ScenarioName,
  target: Target,
  opts: ScenarioOptions,
  progress: Progress,
): Promise<ScenarioResult> {
  switch (name) {
    case "capacity":
      return capacity(target, opts, progress);
    case "rooms":
      return rooms(target, opts, progress);
    case "idle":
      return idle(target, opts, progress);
    case "slow":
      return slow(target, opts, progress);
    case "latency":
      return latency(target, opts, progress);
    case "overload":
      return overload(target, opts, progress);
    case "join-storm":
    case "reconnect-storm":
    case "churn":
    case "idle-room":
      return runLargeRoom(name, target, opts, progress);
  }
}
