/**
 * `.ci/summarize`, which turns `deno task test`'s output into `.ci/run`'s last line and exit
 * status: a test that is ignored without being listed in `.ci/allowed_skips` fails the run, so a
 * machine without Chromium or redis-server cannot report green.
 */
import assert from "node:assert/strict";

const SUMMARIZE = new URL("../.ci/summarize", import.meta.url).pathname;
const ALLOWED = new URL("../.ci/allowed_skips", import.meta.url).pathname;
const COMPILE_TEST = "the compiled executable, with only the release's permissions, serves the " +
  "page, /healthz and a chat round trip from an empty directory, and answers --help and --version";

/** Runs .ci/summarize on `log` as the task's output with exit `status`. */
async function summarize(
  log: string,
  status: number,
  allowed = ALLOWED,
): Promise<{ code: number; lines: string[] }> {
  const file = await Deno.makeTempFile({ prefix: "ci_log_" });
  try {
    await Deno.writeTextFile(file, log);
    const out = await new Deno.Command("bash", {
      args: [SUMMARIZE, file, String(status), allowed],
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { code: out.code, lines: text.trim().split("\n") };
  } finally {
    await Deno.remove(file);
  }
}

const ok = (name: string) => `./tests/a_test.ts => ${name} ... ok (3ms)`;

Deno.test("a run where only the compile test is ignored passes, counting it as skipped", async () => {
  const log = [
    ok("one"),
    ok("two"),
    `./tests/compile_test.ts => ${COMPILE_TEST} ... ignored (0ms)`,
    "",
    "ok | 2 passed | 0 failed | 1 ignored (412ms)",
  ].join("\n");
  const { code, lines } = await summarize(log, 0);
  assert.equal(lines.at(-1), "2 passed, 0 failed, 1 skipped");
  assert.equal(code, 0);
});

Deno.test("a run where a Redis test is ignored fails, naming the test", async () => {
  const log = [
    ok("one"),
    "./tests/redis_test.ts => RedisStore keeps order (skipped: no redis-server) ... ignored (0ms)",
    `./tests/compile_test.ts => ${COMPILE_TEST} ... ignored (0ms)`,
    "",
    "ok | 1 passed | 0 failed | 2 ignored (412ms)",
  ].join("\n");
  const { code, lines } = await summarize(log, 0);
  assert.equal(lines.at(-1), "1 passed, 1 failed, 1 skipped");
  assert.ok(
    lines.includes(
      "ci:   tests/redis_test.ts => RedisStore keeps order (skipped: no redis-server)",
    ),
    lines.join("\n"),
  );
  assert.notEqual(code, 0);
});

Deno.test("an ignored step counts like an ignored test", async () => {
  const log = [
    "./tests/b_test.ts => a suite ... a step ... ignored (0ms)",
    "./tests/b_test.ts => a suite ... ok (5ms)",
    "",
    "ok | 1 passed (1 step) | 0 failed | 0 ignored (1 step) (9ms)",
  ].join("\n");
  const { code, lines } = await summarize(log, 0);
  assert.equal(lines.at(-1), "1 passed, 1 failed");
  assert.notEqual(code, 0);
});

Deno.test("an ignored test passes only when its file and name both match an allowed line", async () => {
  const log = [
    `./tests/other_test.ts => ${COMPILE_TEST} ... ignored (0ms)`,
    "",
    "ok | 0 passed | 0 failed | 1 ignored (1ms)",
  ].join("\n");
  const { code, lines } = await summarize(log, 0);
  assert.equal(lines.at(-1), "0 passed, 1 failed");
  assert.notEqual(code, 0);
});

Deno.test("ignored tests the summary counts but no line names fail the run", async () => {
  const { code, lines } = await summarize("ok | 3 passed | 0 failed | 2 ignored (1ms)", 0);
  assert.equal(lines.at(-1), "3 passed, 1 failed");
  assert.notEqual(code, 0);
});

Deno.test("a failed test fails the run with the task's counts", async () => {
  const log = [ok("one"), "", "FAILED | 4 passed | 2 failed (1s)"].join("\n");
  const { code, lines } = await summarize(log, 1);
  assert.equal(lines.at(-1), "4 passed, 2 failed");
  assert.notEqual(code, 0);
});

Deno.test("a format, lint or type check failure before any test is one failure", async () => {
  const { code, lines } = await summarize("error: Found 1 not formatted file in 40 files\n", 1);
  assert.equal(lines.at(-1), "0 passed, 1 failed");
  assert.notEqual(code, 0);
});

Deno.test("a clean run with nothing ignored passes with no skipped count", async () => {
  const log = [ok("one"), "", "ok | 1 passed | 0 failed (2ms)"].join("\n");
  const { code, lines } = await summarize(log, 0);
  assert.deepEqual([lines.at(-1), code], ["1 passed, 0 failed", 0]);
});

Deno.test("the allowed list names the compile test exactly as compile_test.ts registers it", async () => {
  const allowed = (await Deno.readTextFile(ALLOWED)).split("\n")
    .filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#"));
  assert.deepEqual(allowed, [`tests/compile_test.ts => ${COMPILE_TEST}`]);
  const source = await Deno.readTextFile(new URL("./compile_test.ts", import.meta.url));
  const registered = source.match(/const name = ((?:"[^"]*"\s*\+?\s*)+);/);
  assert.ok(registered, "compile_test.ts names its test in `const name = ...;`");
  const joined = [...registered[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]).join("");
  assert.equal(joined, COMPILE_TEST);
});
