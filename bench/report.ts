/**
 * Markdown tables for the bench results: one row per measured step, and a summary with every
 * figure for each target and each target as a ratio of the baseline (the naive server, or in
 * two-instance mode the one embedded instance).
 */

import { fmtRate, type StepResult } from "./run.ts";
import type { Figure, ScenarioResult } from "./scenario_types.ts";

function ms(v: number): string {
  if (!Number.isFinite(v)) return "n/a";
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function bytes(v: number): string {
  if (!Number.isFinite(v)) return "n/a";
  const abs = Math.abs(v);
  if (abs >= 2 ** 30) return `${(v / 2 ** 30).toFixed(2)} GiB`;
  if (abs >= 2 ** 20) return `${(v / 2 ** 20).toFixed(1)} MiB`;
  if (abs >= 2 ** 10) return `${(v / 2 ** 10).toFixed(1)} KiB`;
  return `${v.toFixed(0)} B`;
}

/** A delivery ratio as a percentage that never rounds a loss up to "100%". */
export function deliveredPct(v: number): string {
  if (!Number.isFinite(v)) return "n/a";
  if (v === 1) return "100%";
  const digits = v > 0.9999 && v < 1 ? 4 : 2;
  const text = (v * 100).toFixed(digits);
  return v < 1 && Number(text) >= 100 ? "99.9999%" : `${text}%`;
}

function share(v: number): string {
  return Number.isFinite(v) ? `${(v * 100).toFixed(0)}%` : "n/a";
}

/** One figure's value in its unit, for a table cell. */
export function formatFigure(f: Figure): string {
  switch (f.unit) {
    case "msg/s":
      return fmtRate(f.value);
    case "ms":
      return Number.isFinite(f.value) ? `${ms(f.value)} ms` : "n/a";
    case "share":
      return share(f.value);
    case "bytes":
      return bytes(f.value);
    case "count":
      return Number.isInteger(f.value) ? f.value.toFixed(0) : f.value.toFixed(1);
    case "ratio":
      if (!Number.isFinite(f.value)) return "n/a";
      return f.name.includes("delivery") ? deliveredPct(f.value) : `×${f.value.toPrecision(3)}`;
  }
}

function row(cells: string[]): string {
  return `| ${cells.join(" | ")} |`;
}

function table(head: string[], rows: string[][]): string {
  return [row(head), row(head.map(() => "---")), ...rows.map(row)].join("\n");
}

function stepRow(target: string, s: StepResult, withRedis: boolean): string[] {
  const closes = Object.entries(s.closes).map(([c, n]) => `${n}×${c}`).join(" ");
  const cpu = s.serverCpus.length > 1
    ? `${s.serverCpus.map(share).join(" + ")} = ${share(s.serverCpu)}`
    : share(s.serverCpu);
  return [
    target,
    s.label,
    `${fmtRate(s.sentPerS)}`,
    fmtRate(s.deliveredPerS),
    deliveredPct(s.ratio),
    ms(s.latency.p50),
    ms(s.latency.p90),
    ms(s.latency.p99),
    ms(s.latency.p999),
    ms(s.latency.max),
    `${ms(s.toServer.p99)} / ${ms(s.fromServer.p99)}`,
    cpu,
    ...(withRedis ? [share(s.redisCpu)] : []),
    bytes(s.serverPeakRss),
    Number.isFinite(s.messagesPerFrame) ? s.messagesPerFrame.toFixed(1) : "n/a",
    fmtRate(s.readsPerS),
    share(s.loadCpu),
    s.cores.map((c) => share(c.busy)).join(" / "),
    s.cores.map((c) => share(c.steal)).join(" / "),
    closes || "-",
    `${s.seqRepeated} (${s.seqRepeatedOwn}) / ${s.seqLate} / ${s.seqSkipped - s.seqLate}`,
  ];
}

/** The per-step table of one scenario over every target it ran on (empty if no steps). */
export function stepsTable(results: ScenarioResult[]): string {
  const withRedis = results.some((r) => r.steps.some((s) => Number.isFinite(s.redisCpu)));
  const rows = results.flatMap((r) => r.steps.map((s) => stepRow(r.target, s, withRedis)));
  if (rows.length === 0) return "";
  return table([
    "target",
    "step",
    "sent/s",
    "delivered/s",
    "delivered",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "p99.9 ms",
    "max ms",
    "p99 to / from server ms",
    "server CPU",
    ...(withRedis ? ["Redis CPU"] : []),
    "server RSS peak",
    "msgs/frame",
    "load reads/s",
    "load CPU",
    "cores busy",
    "steal",
    "closed",
    "seq twice (own) / late / missing",
  ], rows);
}

/**
 * Every summary figure, one column per target; when `baseline` (default "naive") is among the
 * targets with others beside it, one more column per other target gives its figure ÷ the
 * baseline's, and a last one which direction is better.
 */
export function summaryTable(results: ScenarioResult[], baseline = "naive"): string {
  const names: string[] = [];
  for (const r of results) {
    for (const f of r.figures) if (!names.includes(f.name)) names.push(f.name);
  }
  const base = results.find((r) => r.target === baseline);
  const others = base ? results.filter((r) => r !== base) : [];
  const head = ["figure", ...results.map((r) => r.target)];
  if (others.length > 0) head.push(...others.map((o) => `${o.target} ÷ ${baseline}`), "better");
  const rows = names.map((name) => {
    const cells = [name];
    for (const r of results) {
      const f = r.figures.find((x) => x.name === name);
      cells.push(f ? formatFigure(f) : "-");
    }
    if (others.length > 0) {
      const a = base!.figures.find((x) => x.name === name);
      let better = a?.better ?? "";
      for (const o of others) {
        const b = o.figures.find((x) => x.name === name);
        better ||= b?.better ?? "";
        const q = a && b && a.value !== 0 ? b.value / a.value : NaN;
        cells.push(Number.isFinite(q) ? `×${q >= 100 ? q.toFixed(0) : q.toPrecision(3)}` : "n/a");
      }
      cells.push(better);
    }
    return cells;
  });
  return table(head, rows);
}

/**
 * The whole section for one scenario: setup lines, steps, summary (ratios against `baseline`,
 * see {@linkcode summaryTable}) and notes.
 */
export function scenarioSection(results: ScenarioResult[], baseline?: string): string {
  if (results.length === 0) return "";
  const parts = [`## ${results[0].scenario}`, ""];
  for (const r of results) parts.push(`- ${r.target}: ${r.setup}`);
  const steps = stepsTable(results);
  if (steps) parts.push("", steps);
  parts.push("", summaryTable(results, baseline));
  const notes = results.flatMap((r) => r.notes.map((n) => `- ${r.target}: ${n}`));
  if (notes.length) parts.push("", ...notes);
  return parts.join("\n") + "\n";
}
