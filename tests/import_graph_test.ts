/**
 * The import graph of the project's own .ts files has no cycle (issue 13: "the import graph keeps
 * no cycles"); the checker is shown to find one in a hand-made graph, then run on the repository.
 */
import assert from "node:assert/strict";
import {
  findCycle,
  type ImportGraph,
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
