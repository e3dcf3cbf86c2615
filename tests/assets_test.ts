/** The embedded browser client: what is served, and how comments are blanked on the way. */
import assert from "node:assert/strict";
import { assets, blankCommentLines } from "../http/assets.ts";

Deno.test("blankCommentLines blanks whole-line comments and keeps every line", () => {
  const source = [
    "// @ts-check",
    "/** Purpose of the module. */",
    "import { a } from './a.js';",
    "/**",
    " * A longer comment.",
    " * @param {number} n",
    " */",
    "export const f = (n) => n + 1;",
    "  // an indented note",
    "/* css-style */",
    "    /*/ a slash right after the opening */",
  ].join("\n");
  const out = blankCommentLines(source).split("\n");
  assert.equal(out.length, 11);
  assert.deepEqual(out, [
    "",
    "",
    "import { a } from './a.js';",
    "",
    "",
    "",
    "",
    "export const f = (n) => n + 1;",
    "",
    "",
    "",
  ]);
});

Deno.test("blankCommentLines keeps comments that share a line with code", () => {
  const source = [
    "const m = /** @type {Map<string, number>} */ (new Map());",
    'const url = "http://example.com/*x*/";',
    "f(); // trailing note",
    "/** @type {HTMLElement} */",
    "/** a cast split",
    " */ (el).focus();",
    "/* never closed",
    "x();",
  ].join("\n");
  const out = blankCommentLines(source).split("\n");
  assert.deepEqual(out, [
    "const m = /** @type {Map<string, number>} */ (new Map());",
    'const url = "http://example.com/*x*/";',
    "f(); // trailing note",
    "",
    "/** a cast split",
    " */ (el).focus();",
    "/* never closed",
    "x();",
  ]);
});

Deno.test("every served script and stylesheet has its source's line count, so stack traces match static/", async () => {
  for (const [path, asset] of assets) {
    if (!/\.(js|css)$/.test(path)) continue;
    const source = await Deno.readTextFile(new URL(`../static${path}`, import.meta.url));
    assert.equal(asset.body.split("\n").length, source.split("\n").length, path);
    assert.ok(asset.body.length < source.length, `${path} is served with its comments blanked`);
  }
});

Deno.test("static scripts have no multi-line template literals, which comment blanking would not see", async () => {
  for (const [path] of assets) {
    if (!path.endsWith(".js")) continue;
    const source = await Deno.readTextFile(new URL(`../static${path}`, import.meta.url));
    source.split("\n").forEach((line, i) => {
      const ticks = line.replaceAll("\\`", "").split("`").length - 1;
      assert.equal(ticks % 2, 0, `${path}:${i + 1} opens a template literal it does not close`);
    });
  }
});
