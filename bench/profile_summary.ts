/**
 * Summarises a V8 `.cpuprofile` (from `deno run --cpu-prof`): the functions with the most self
 * time, and the most inclusive time, as a share of the sampled total.
 *
 * Usage: deno run -R bench/profile_summary.ts FILE.cpuprofile [top-N]
 * Profile the server under bench load with BENCH_SERVER_FLAGS="--cpu-prof --cpu-prof-dir=DIR".
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** One function's share of the profile, in percent of all samples. */
export interface FunctionCost {
  name: string;
  selfPct: number;
  totalPct: number;
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url ? url.replace(/^.*\//, "") : "";
  return `${functionName || "(anonymous)"}${file ? ` ${file}:${lineNumber + 1}` : ""}`;
}

/** Self and inclusive time per function label, most expensive first by self time. */
export function summarise(profile: Profile): FunctionCost[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfTime = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    selfTime.set(id, (selfTime.get(id) ?? 0) + dt);
    total += dt;
  });
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, t] of selfTime) {
    const node = byId.get(id)!;
    self.set(label(node), (self.get(label(node)) ?? 0) + t);
    // Count each label once per stack, so recursion does not inflate inclusive time.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + t);
    }
  }
  return [...inclusive.keys()].map((name) => ({
    name,
    selfPct: (100 * (self.get(name) ?? 0)) / total,
    totalPct: (100 * inclusive.get(name)!) / total,
  })).sort((a, b) => b.selfPct - a.selfPct);
}

if (import.meta.main) {
  const [file, topText] = Deno.args;
  if (!file) {
    console.error("Usage: deno run -R bench/profile_summary.ts FILE.cpuprofile [top-N]");
    Deno.exit(2);
  }
  const top = Number(topText ?? 25);
  const costs = summarise(JSON.parse(await Deno.readTextFile(file)));
  console.log("self %  total %  function");
  for (const c of costs.slice(0, top)) {
    console.log(
      `${c.selfPct.toFixed(1).padStart(6)}  ${c.totalPct.toFixed(1).padStart(7)}  ${c.name}`,
    );
  }
  console.log("\nmost inclusive time:");
  for (const c of [...costs].sort((a, b) => b.totalPct - a.totalPct).slice(0, top)) {
    console.log(
      `${c.selfPct.toFixed(1).padStart(6)}  ${c.totalPct.toFixed(1).padStart(7)}  ${c.name}`,
    );
  }
}
