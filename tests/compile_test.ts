/**
 * Builds `main.ts` with `deno compile` and the release's narrow permissions, then runs the
 * executable from an empty directory: it must serve the page, `/healthz`, a WebSocket chat round
 * trip, `--help` and `--version`, with no permission beyond the network and its database files.
 *
 * `deno compile` downloads its runtime base (denort) on first use. Where that cannot happen (no
 * network) and `DENORT_BIN` does not point at one, the test is registered as ignored and says why.
 * The build happens once, when this file loads, so that decision is made before registration.
 * Set `CHAT_EXECUTABLE` to test an executable built elsewhere (a release artifact) instead.
 */
import {
  COMPILE_PERMISSIONS,
  compileArgs,
  DATABASE_FILES,
  executableName,
  sha256File,
  TARGETS,
} from "../scripts/compile_all.ts";
import { TestClient } from "./helpers.ts";
import { V8_FLAGS } from "../ops/config.ts";
import { serverDenoArgs } from "../bench/processes.ts";

const ROOT = new URL("../", import.meta.url);
/** How long the executable may take to print its Listening line, in ms. */
const START_TIMEOUT_MS = 15_000;
/** How long it may take to exit after SIGTERM, in ms. */
const STOP_TIMEOUT_MS = 10_000;

const SKIP_NO_DENORT =
  "compile test skipped: deno compile cannot download its runtime base here (no network) and DENORT_BIN is not set";

/** The outcome of building at load time: an executable, a reason to skip, or a build failure. */
type Build =
  | { kind: "built"; dir: string; executable: string }
  | { kind: "given"; executable: string }
  | { kind: "skip"; reason: string }
  | { kind: "failed"; output: string };

async function exists(path: string | URL): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function build(): Promise<Build> {
  const given = Deno.env.get("CHAT_EXECUTABLE");
  // Absolute, because the executable is started with another working directory.
  if (given) return { kind: "given", executable: await Deno.realPath(given) };
  const entry = new URL("main.ts", ROOT);
  if (!await exists(entry)) {
    return { kind: "skip", reason: "compile test skipped: main.ts does not exist yet" };
  }
  const dir = await Deno.makeTempDir({ prefix: "chat_compile_" });
  const executable = `${dir}/chat${Deno.build.os === "windows" ? ".exe" : ""}`;
  // Type checking is the test task's job (deno check); skipping it here saves seconds per run.
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: compileArgs({ entry: entry.pathname, output: executable, check: false }),
    cwd: dir,
    stdin: "null",
  }).output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  if (success) return { kind: "built", dir, executable };
  await Deno.remove(dir, { recursive: true });
  // "Setting up base binary" is the context deno gives when it cannot fetch denort.
  if (Deno.env.get("DENORT_BIN") === undefined && output.includes("Setting up base binary")) {
    return { kind: "skip", reason: SKIP_NO_DENORT };
  }
  return { kind: "failed", output };
}

/** How to start the server: a program and the arguments that come before the server's own. */
interface Launcher {
  program: string;
  prefix: string[];
}

/** The server running, and the URL from its Listening line. */
interface Running {
  url: string;
  output(): string;
  stop(): Promise<Deno.CommandStatus>;
}

/** Starts the server in `cwd` and resolves once it prints `Listening on <url>` on stdout. */
async function start(launcher: Launcher, cwd: string): Promise<Running> {
  const child = new Deno.Command(launcher.program, {
    args: [...launcher.prefix, "--port", "0"],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdoutText = "";
  let stderrText = "";
  let resolveUrl!: (url: string) => void;
  const listening = new Promise<string>((resolve) => resolveUrl = resolve);
  const pumps = Promise.all([
    (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        stdoutText += decoder.decode(chunk, { stream: true });
        const m = stdoutText.match(/Listening on (\S+)/);
        if (m) resolveUrl(m[1]);
      }
    })(),
    (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) stderrText += decoder.decode(chunk, { stream: true });
    })(),
  ]);
  const output = () => `--- stdout\n${stdoutText}--- stderr\n${stderrText}`;
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      // A server that ignores SIGTERM must not hang the suite.
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* exited just now */ }
      }, STOP_TIMEOUT_MS);
      const status = await child.status;
      clearTimeout(timer);
      await pumps;
      return status;
    })();

  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) =>
    timer = setTimeout(() => reject(new Error("no Listening line in time")), START_TIMEOUT_MS)
  );
  const exited = child.status.then((s) => Promise.reject(new Error(`exited with ${s.code}`)));
  exited.catch(() => {}); // a later exit is seen by stop()
  try {
    return { url: await Promise.race([listening, timeout, exited]), output, stop };
  } catch (e) {
    await stop();
    throw new Error(`Cannot start the server: ${(e as Error).message}\n${output()}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the server with `args` to completion; it must exit 0. Returns its stdout. */
async function runOnce(launcher: Launcher, cwd: string, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(launcher.program, {
    args: [...launcher.prefix, ...args],
    cwd,
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  if (code !== 0) {
    throw new Error(
      `${args.join(" ")} exited with ${code}\n${decoder.decode(stdout)}${decoder.decode(stderr)}`,
    );
  }
  return decoder.decode(stdout);
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** The checks both tests make: --version, --help, then a server started in an empty directory. */
async function checkServer(t: Deno.TestContext, launcher: Launcher): Promise<void> {
  const { version } = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const cwd = await Deno.makeTempDir({ prefix: "chat_compiled_run_" });
  try {
    await t.step("--version prints deno.json's version", async () => {
      const stdout = await runOnce(launcher, cwd, ["--version"]);
      const printed = stdout.match(/\d+\.\d+\.\d+[-+\w.]*/)?.[0];
      assert(printed === version, `expected version ${version}, got ${JSON.stringify(stdout)}`);
    });

    await t.step("--help describes the options and exits 0", async () => {
      const stdout = await runOnce(launcher, cwd, ["--help"]);
      assert(stdout.includes("--port"), `--help does not mention --port:\n${stdout}`);
    });

    const server = await start(launcher, cwd);
    const passed: boolean[] = [];
    try {
      passed.push(
        await t.step("/ serves the HTML page", async () => {
          const response = await fetch(server.url);
          const body = await response.text();
          assert(response.status === 200, `GET / answered ${response.status}`);
          const type = response.headers.get("content-type");
          assert(type?.startsWith("text/html"), `GET / content-type is ${type}`);
          assert(/<(html|!doctype html)/i.test(body), "GET / body is not an HTML page");
        }),
      );

      passed.push(
        await t.step("/healthz answers status ok", async () => {
          const response = await fetch(new URL("healthz", server.url));
          const body = await response.json();
          assert(response.status === 200, `GET /healthz answered ${response.status}`);
          assert(body.status === "ok", `GET /healthz said ${JSON.stringify(body)}`);
        }),
      );

      passed.push(
        await t.step(
          "hello → welcome, join general → joined, say → the message echoed",
          async () => {
            const wsUrl = new URL("ws", server.url).href.replace(/^http/, "ws");
            const client = await TestClient.connect(wsUrl, "alice");
            try {
              const joined = await client.request(
                { type: "join", room: "general" },
                (m) => m.type === "joined",
              );
              assert(joined.room === "general", `joined ${JSON.stringify(joined)}`);
              const message = await client.request(
                { type: "say", room: "general", text: "hi from the release build", cid: "c1" },
                (m) => m.type === "message" && m.cid === "c1",
              );
              assert(
                message.from === "alice" && message.text === "hi from the release build" &&
                  message.seq >= 1,
                `message ${JSON.stringify(message)}`,
              );
            } finally {
              await client.close();
            }
          },
        ),
      );
    } finally {
      await server.stop();
    }
    // The server's own words are the quickest way to see why (a permission error, a crash).
    if (passed.includes(false)) {
      throw new Error(`a step failed; the server printed:\n${server.output()}`);
    }
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

const built = await build();
const name = "the compiled executable, with only the release's permissions, serves the page, " +
  "/healthz and a chat round trip from an empty directory, and answers --help and --version";

if (built.kind === "skip") {
  console.log(built.reason);
  Deno.test({ name, ignore: true, fn() {} });
} else {
  Deno.test(name, async (t) => {
    if (built.kind === "failed") throw new Error(`Cannot compile main.ts:\n${built.output}`);
    try {
      await checkServer(t, { program: built.executable, prefix: [] });
    } finally {
      if (built.kind === "built") await Deno.remove(built.dir, { recursive: true });
    }
  });
}

// The same checks without compiling, so the narrow permissions are held to on every run, even
// where the compiled test is skipped; what only compiling can break (embedding) it cannot see.
Deno.test({
  name: "main.ts run with only the release's permissions works from an empty directory",
  ignore: !await exists(new URL("main.ts", ROOT)),
  fn: (t) =>
    checkServer(t, {
      program: Deno.execPath(),
      prefix: [
        "run",
        "--config",
        new URL("deno.json", ROOT).pathname,
        ...COMPILE_PERMISSIONS,
        new URL("main.ts", ROOT).pathname,
      ],
    }),
});

Deno.test("compile_all builds five targets, each to its own file name", () => {
  const names = TARGETS.map(executableName);
  assert(new Set(names).size === 5, `names collide: ${names}`);
  assert(names.includes("chat-x86_64-pc-windows-msvc.exe"), `no .exe for Windows: ${names}`);
  assert(names.includes("chat-aarch64-apple-darwin"), `no macOS arm64: ${names}`);
});

Deno.test("compiled executables may touch only the network, the database files and the CHAT_* secrets", () => {
  const files = DATABASE_FILES.join(",");
  const expected = [
    "--allow-net",
    "--allow-env=CHAT_PASSWORD,CHAT_JWT_SECRET,CHAT_METRICS_TOKEN",
    `--allow-read=${files}`,
    `--allow-write=${files}`,
  ];
  assert(
    JSON.stringify(COMPILE_PERMISSIONS) === JSON.stringify(expected),
    `${COMPILE_PERMISSIONS}`,
  );
  const args = compileArgs({ entry: "main.ts", output: "dist/x", target: TARGETS[0] });
  assert(!args.some((a) => a === "-A" || a === "--allow-all"), `${args}`);
  assert(args.at(-1) === "main.ts" && args.includes("--target"), `${args}`);
});

Deno.test("sha256File hashes a file as sha256sum does", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "abc");
    const sum = await sha256File(file);
    assert(sum === "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sum);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("the server runs with the same V8 flags from the tasks, the executables and the bench", async () => {
  const flag = `--v8-flags=${V8_FLAGS.join(",")}`;
  const { tasks } = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  for (const task of ["dev", "start", "compile"]) {
    assert(tasks[task].split(" ").includes(flag), `task ${task} lacks ${flag}: ${tasks[task]}`);
  }
  const args = compileArgs({ entry: "main.ts", output: "dist/x", target: TARGETS[0] });
  assert(args.includes(flag), `compile_all lacks ${flag}: ${args}`);
  assert(serverDenoArgs("server").includes(flag), `the bench's server lacks ${flag}`);
  assert(!serverDenoArgs("naive").some((a) => a.startsWith("--v8-flags")), "naive is tuned");
});

Deno.test("V8 accepts the server's flags (an unknown flag would stop deno at start)", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", `--v8-flags=${V8_FLAGS.join(",")}`, "-A", "main.ts", "--version"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(stderr);
  assert(code === 0, `exit ${code}: ${err}`);
  assert(new TextDecoder().decode(stdout).trim() !== "", "no version printed");
});
