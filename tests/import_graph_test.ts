/**
 * The import graph of the project's own .ts files has no cycle and keeps its layers (issue 13: "the
 * import graph keeps no cycles and no import from a lower layer back up"); each checker is shown to
 * find a fault in a hand-made graph, then run on the repository.
 */
import assert from "node:assert/strict";
import {
  findCycle,
  type ImportGraph,
  type LayerRule,
  layerViolations,
  readImportGraph,
  relativeSpecifiers,
  resolveSpecifier,
} from "./import_graph.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

Deno.test("the import reader sees static, re-export, bare and dynamic imports, not comments", () => {
  const source = [
    `import { a } from "./a.ts";`,
    `import type {\n  B,\n  C,\n} from "../b.ts";`,
    `export { d } from "./d.ts";`,
    `import "./side.ts";`,
    `const m = await import("./lazy.ts");`,
    `import x from "npm:x@1";`,
    `// import { gone } from "./commented.ts";`,
    `/* import { gone } from "./block.ts"; */`,
    `const url = "http://example.com/"; import { e } from "./e.ts";`,
  ].join("\n");
  assert.deepEqual(relativeSpecifiers(source), [
    "./a.ts",
    "../b.ts",
    "./d.ts",
    "./side.ts",
    "./lazy.ts",
    "./e.ts",
  ]);
});

Deno.test("specifiers resolve against the importing file's folder", () => {
  assert.equal(resolveSpecifier("ops/config.ts", "../hub/room.ts"), "hub/room.ts");
  assert.equal(resolveSpecifier("main.ts", "./ops/log.ts"), "ops/log.ts");
  assert.equal(resolveSpecifier("bench/main.ts", "./run.ts"), "bench/run.ts");
});

Deno.test("findCycle reports a cycle as the files on it, and null for a graph without one", () => {
  const cyclic: ImportGraph = new Map([
    ["main.ts", ["bench/report.ts"]],
    ["bench/report.ts", ["bench/scenarios.ts"]],
    ["bench/scenarios.ts", ["bench/run.ts", "bench/report.ts"]],
    ["bench/run.ts", []],
  ]);
  assert.deepEqual(findCycle(cyclic), ["bench/report.ts", "bench/scenarios.ts", "bench/report.ts"]);
  const selfLoop: ImportGraph = new Map([["a.ts", ["a.ts"]]]);
  assert.deepEqual(findCycle(selfLoop), ["a.ts", "a.ts"]);
  const diamond: ImportGraph = new Map([
    ["a.ts", ["b.ts", "c.ts"]],
    ["b.ts", ["d.ts"]],
    ["c.ts", ["d.ts"]],
    ["d.ts", []],
  ]);
  assert.equal(findCycle(diamond), null);
});

Deno.test("no import cycle among the project's non-test .ts files", async () => {
  const graph = await readImportGraph(ROOT);
  assert.ok(graph.has("hub.ts") && graph.has("bench/scenarios.ts"), "the walk found the sources");
  const cycle = findCycle(graph);
  assert.equal(cycle, null, `import cycle: ${cycle?.join(" → ")}`);
});

/** Server folders that sit below the hub: the hub and the edge import them, never the reverse. */
const BELOW_HUB = ["protocol/", "store/", "auth/", "ops/"];
/**
 * ops/observability.ts is the adapter that copies the hub's counters into metrics and its events
 * into the log: it is written against the hub's types on purpose, and nothing below imports it.
 */
const HUB_ADAPTERS = new Set(["ops/observability.ts"]);
/** The hub and what sits above it: membership and fan-out, the connection, routing and wiring. */
const hubOrAbove = (f: string) =>
  f === "hub.ts" || f.startsWith("hub/") || f === "client.ts" || f === "main.ts" ||
  f === "http/server.ts" || f === "http/chat_server.ts";
const SERVER_DIRS = ["auth/", "http/", "hub/", "ops/", "protocol/", "store/"];
const inServer = (f: string) =>
  f === "hub.ts" || f === "client.ts" || SERVER_DIRS.some((d) => f.startsWith(d));

/** The layer rules the code keeps (issue 13: "no import from a lower layer back up"). */
const LAYER_RULES: LayerRule[] = [
  {
    why: "protocol/ is the bottom layer: the wire format imports nothing else of the server",
    from: (f) => f.startsWith("protocol/"),
    to: (t) => !t.startsWith("protocol/"),
  },
  {
    why: "protocol/, store/, auth/ and ops/ sit below the hub and never import it back",
    from: (f) => BELOW_HUB.some((d) => f.startsWith(d)) && !HUB_ADAPTERS.has(f),
    to: hubOrAbove,
  },
  {
    why: "redis/ implements the hub's cluster interface and needs nothing else of the hub",
    from: (f) => f.startsWith("redis/"),
    to: (t) => hubOrAbove(t) && t !== "hub/cluster.ts",
  },
  {
    why: "only main.ts loads redis/ (lazily), so a single instance loads no Redis code",
    from: inServer,
    to: (t) => t.startsWith("redis/"),
  },
];

Deno.test("layerViolations names each import that breaks a rule, with the rule's reason", () => {
  const graph: ImportGraph = new Map([
    ["ops/config.ts", ["hub/room.ts", "ops/limits.ts"]],
    ["hub/room.ts", ["ops/limits.ts"]],
    ["ops/limits.ts", []],
  ]);
  assert.deepEqual(layerViolations(graph, LAYER_RULES), [
    "ops/config.ts → hub/room.ts (protocol/, store/, auth/ and ops/ sit below the hub and never " +
    "import it back)",
  ]);
});

Deno.test("no import from a lower layer of the server back up", async () => {
  const graph = await readImportGraph(ROOT);
  assert.deepEqual(layerViolations(graph, LAYER_RULES), []);
});
