/**
 * The project's import graph, read from source text: every non-test .ts file's relative imports,
 * and the checks run on it (a cycle, an import that breaks a layer rule).
 *
 * Design: `readImportGraph` walks the repository from its root (skipping node_modules, .git and
 * `*_test.ts`) and maps each file, as a path relative to the root, to the files it imports:
 * `import … from`, `export … from`, bare `import "…"` and `import("…")` with a literal
 * specifier; type-only imports count too, since the issue asks for a graph without cycles, not
 * only a runtime without them. Bare specifiers (npm:, jsr:, the import map) are not files of the
 * project and are left out. `findCycle` and `layerViolations` are pure functions of a graph, so
 * their tests feed them a hand-made one.
 */

/** File → the project files it imports, all as paths relative to the repository root. */
export type ImportGraph = Map<string, string[]>;

/** Directories never walked: not the project's own source. */
const SKIPPED_DIRS = new Set(["node_modules", ".git", "dist", ".deno"]);

/** Matches the specifier of a static import/export or a literal dynamic import. */
const SPECIFIER =
  /(?:^|[\s;}])(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']|(?:^|[\s;])import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;

/** Block and line comments, removed before matching so a commented-out import is not an edge. */
const COMMENT = /\/\*[\s\S]*?\*\/|(^|[^:"'`])\/\/.*$/gm;

/** The relative specifiers in one file's source text, in order. */
export function relativeSpecifiers(source: string): string[] {
  const text = source.replace(COMMENT, "$1");
  const found: string[] = [];
  for (const m of text.matchAll(SPECIFIER)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec.startsWith("./") || spec.startsWith("../")) found.push(spec);
  }
  return found;
}

/** `spec` as imported from `from` (both root-relative, with "/" separators), normalized. */
export function resolveSpecifier(from: string, spec: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const piece of spec.split("/")) {
    if (piece === "." || piece === "") continue;
    if (piece === "..") parts.pop();
    else parts.push(piece);
  }
  return parts.join("/");
}

async function* sourceFiles(root: string, dir = ""): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir ? `${root}/${dir}` : root)) {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory && !SKIPPED_DIRS.has(entry.name)) yield* sourceFiles(root, path);
    else if (entry.isFile && path.endsWith(".ts") && !path.endsWith("_test.ts")) yield path;
  }
}

/** The graph of every non-test .ts file under `root`; only edges to .ts files are kept. */
export async function readImportGraph(root: string): Promise<ImportGraph> {
  const graph: ImportGraph = new Map();
  for await (const file of sourceFiles(root)) {
    const source = await Deno.readTextFile(`${root}/${file}`);
    const targets = relativeSpecifiers(source)
      .map((spec) => resolveSpecifier(file, spec))
      .filter((t) => t.endsWith(".ts"));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/**
 * One import cycle in `graph`, as the files on it with the first repeated at the end
 * (`["a.ts", "b.ts", "a.ts"]`), or null when there is none. Depth-first, files in sorted order,
 * so the same graph always reports the same cycle.
 */
export function findCycle(graph: ImportGraph): string[] | null {
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (file: string): string[] | null => {
    if (onPath.has(file)) return [...path.slice(path.indexOf(file)), file];
    if (done.has(file)) return null;
    onPath.add(file);
    path.push(file);
    for (const next of [...(graph.get(file) ?? [])].sort()) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    onPath.delete(file);
    done.add(file);
    return null;
  };
  for (const file of [...graph.keys()].sort()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return null;
}

/** A layer rule: no file matching `from` may import a file matching `to`. */
export interface LayerRule {
  /** Why the rule holds, for the failure message. */
  why: string;
  from: (file: string) => boolean;
  to: (file: string) => boolean;
}

/** Every import in `graph` that breaks a rule, as "importer → imported (why)". */
export function layerViolations(graph: ImportGraph, rules: LayerRule[]): string[] {
  const found: string[] = [];
  for (const [file, targets] of [...graph].sort(([a], [b]) => a.localeCompare(b))) {
    for (const target of targets) {
      for (const rule of rules) {
        if (rule.from(file) && rule.to(target)) found.push(`${file} → ${target} (${rule.why})`);
      }
    }
  }
  return found;
}
