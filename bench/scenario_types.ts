/**
 * The names, knobs and result shapes every bench scenario shares. A leaf of the bench's import
 * graph: the scenario modules, the runner that picks one by name and the report all import it,
 * and it imports nothing of theirs (issue 13: the graph keeps no cycles).
 */

import type { StepResult } from "./run.ts";

/** Scenario names, in the order `--scenario all` runs them. */
export const SCENARIOS = ["latency", "capacity", "rooms", "slow", "idle", "overload"] as const;
/**
 * The large-room scenarios (issue 16), in the order `--scenario large-room` runs them; not part of
 * `all`, since at full size each fills one room with thousands of members (minutes on a server
 * whose joins cost the room's size).
 */
export const LARGE_ROOM_SCENARIOS = [
  "join-storm",
  "reconnect-storm",
  "churn",
  "idle-room",
] as const;
/** One large-room scenario name. */
export type LargeRoomScenario = typeof LARGE_ROOM_SCENARIOS[number];
/** One scenario name. */
export type ScenarioName = typeof SCENARIOS[number] | LargeRoomScenario;

/** Knobs shared by every scenario; undefined means the scenario's own default. */
export interface ScenarioOptions {
  quick: boolean;
  clients?: number;
  rates?: number[];
  durationS?: number;
  /** Size of each text; undefined means the scenario's own (64 bytes; slow: 1024). */
  textBytes?: number;
  /** Clients opened per second (the large-room scenarios); undefined: the scenario's own. */
  openRate?: number;
  /** Share of a room's members that leave and rejoin per minute (churn); undefined: 10%. */
  churnPerMin?: number;
  /** Short unique tag for names and rooms, so runs against one URL never collide. */
  tag: string;
}

/** A summary figure; `better` tells the report which way a ratio is good. */
export interface Figure {
  name: string;
  value: number;
  unit: "msg/s" | "ms" | "share" | "bytes" | "count" | "ratio";
  better?: "higher" | "lower";
}

/** What one scenario measured on one target. */
export interface ScenarioResult {
  scenario: ScenarioName;
  target: string;
  /** A sentence saying what load was applied. */
  setup: string;
  steps: StepResult[];
  figures: Figure[];
  notes: string[];
}
