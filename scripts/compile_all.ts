/**
 * Builds the server as a standalone executable for every release platform into `dist/`, with a
 * `SHA256SUMS` file that `sha256sum -c` reads, for `deno task compile:all` and the release workflow.
 *
 * The executables get only the permissions the server needs: the network, and the SQLite database
 * files in the working directory. Relative paths in these flags are resolved when the executable
 * runs, against its working directory (denoland/deno#23715, fixed in 1.43).
 *
 * Usage: `deno run --allow-run --allow-read --allow-write=dist scripts/compile_all.ts
 * [--target TRIPLE]... [--out DIR]`. `deno compile` downloads the runtime base (denort) for each
 * target on first use; set `DENORT_BIN` to a denort binary to build offline for the host target.
 */

/** The platforms a release ships, as `deno compile --target` names them. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

import { SECRET_ENV_VARIABLES, V8_FLAGS } from "../ops/config.ts";

/** The SQLite files the server may read and write: the database, its WAL, shared memory and journal. */
export const DATABASE_FILES = ["chat.db", "chat.db-wal", "chat.db-shm", "chat.db-journal"];

/** Permission flags baked into every executable; the compile test uses these same flags. */
export const COMPILE_PERMISSIONS: readonly string[] = [
  "--allow-net",
  `--allow-env=${SECRET_ENV_VARIABLES.join(",")}`,
  `--allow-read=${DATABASE_FILES.join(",")}`,
  `--allow-write=${DATABASE_FILES.join(",")}`,
];

/** The executable's base name; the target triple and, on Windows, `.exe` are appended. */
export const EXECUTABLE_NAME = "chat";

/** The file name of the executable built for `target`. */
export function executableName(target: string): string {
  return `${EXECUTABLE_NAME}-${target}${target.includes("windows") ? ".exe" : ""}`;
}

/** The `deno compile` arguments that build `entry` into `output` (for the host when no target). */
export function compileArgs(
  options: { entry: string; output: string; target?: string; check?: boolean },
): string[] {
  return [
    "compile",
    ...(options.check === false ? ["--no-check"] : []),
    ...COMPILE_PERMISSIONS,
    `--v8-flags=${V8_FLAGS.join(",")}`,
    ...(options.target ? ["--target", options.target] : []),
    "--output",
    options.output,
    options.entry,
  ];
}

/** The lowercase hex SHA-256 of a file's contents. */
export async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Parsed command line: which targets to build and where. */
interface CompileAllArgs {
  targets: string[];
  out: string;
}

function parseArgs(args: string[]): CompileAllArgs {
  const targets: string[] = [];
  let out = "dist";
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = args[i + 1];
    if ((arg === "--target" || arg === "--out") && value === undefined) {
      throw new Error(`Cannot compile: ${arg} needs a value`);
    }
    if (arg === "--target") {
      if (!(TARGETS as readonly string[]).includes(value)) {
        throw new Error(`Cannot compile: unknown target ${value}; known: ${TARGETS.join(", ")}`);
      }
      targets.push(value);
      i++;
    } else if (arg === "--out") {
      out = value;
      i++;
    } else {
      throw new Error(`Cannot compile: unknown argument ${arg}`);
    }
  }
  return { targets: targets.length > 0 ? targets : [...TARGETS], out };
}

async function main(): Promise<void> {
  const { targets, out } = parseArgs(Deno.args);
  const root = new URL("../", import.meta.url);
  const entry = new URL("main.ts", root).pathname;
  await Deno.mkdir(out, { recursive: true });
  const sums: string[] = [];
  // One target at a time: each compile is memory-hungry, and the first one type-checks for the rest.
  for (const [i, target] of targets.entries()) {
    const name = executableName(target);
    const output = `${out}/${name}`;
    console.error(`[${i + 1}/${targets.length}] ${target} -> ${output}`);
    const { success, code } = await new Deno.Command(Deno.execPath(), {
      args: compileArgs({ entry, output, target, check: i === 0 }),
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!success) throw new Error(`Cannot compile for ${target}: deno compile exited with ${code}`);
    sums.push(`${await sha256File(output)}  ${name}`);
  }
  await Deno.writeTextFile(`${out}/SHA256SUMS`, sums.join("\n") + "\n");
  console.error(`wrote ${out}/SHA256SUMS`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    Deno.exit(1);
  }
}
