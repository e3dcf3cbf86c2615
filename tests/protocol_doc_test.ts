/** docs/protocol.md is the contract for other clients: it must name everything protocol.ts speaks. */
import assert from "node:assert/strict";
import { CloseCode, parseCommand } from "../protocol/protocol.ts";

const doc = await Deno.readTextFile(new URL("../docs/protocol.md", import.meta.url));
const source = await Deno.readTextFile(new URL("../protocol/protocol.ts", import.meta.url));

Deno.test("docs/protocol.md lists every error code the server can send", () => {
  const union = /export type ErrorCode =([^;]+);/.exec(source)![1];
  const codes = [...union.matchAll(/"([a-z_]+)"/g)].map((m) => m[1]);
  assert.ok(codes.length >= 9);
  for (const code of codes) {
    assert.ok(doc.includes(`| \`${code}\``), `error code ${code} missing from the table`);
  }
});

Deno.test("docs/protocol.md lists every close code the server uses", () => {
  for (const [meaning, code] of Object.entries(CloseCode)) {
    assert.match(
      doc,
      new RegExp(`^\\| ${code} \\|`, "m"),
      `close code ${code} (${meaning}) missing from the table`,
    );
  }
});

Deno.test("every command type in docs/protocol.md parses, and every parsed type is documented", () => {
  // Every command the parser's union names, read from its source, so a new one must be documented.
  const union = /export type Command =([\s\S]+?)\n\s*\)/.exec(source)![1];
  const types = [...union.matchAll(/type: "([a-z_]+)"/g)].map((m) => m[1]);
  assert.ok(types.length >= 8, `commands found: ${types}`);
  for (const type of types) {
    assert.ok(
      doc.includes(`"type": "${type}"`) || doc.includes(`"type":"${type}"`),
      `${type} undocumented`,
    );
    const fields = { room: "general", text: "x", to: "bob", password: "long enough", seq: 1 };
    const r = parseCommand(JSON.stringify({ type, ...fields }), {
      maxTextChars: 10,
    });
    assert.ok(r.ok, `${type} does not parse`);
  }
  const r = parseCommand('{"type":"nope"}', { maxTextChars: 10 });
  assert.ok(!r.ok && r.code === "unknown_type");
});

Deno.test("every JSON example in docs/protocol.md is valid JSON", () => {
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length > 5);
  for (const block of blocks) {
    // A block holds one object or one object per line; /* comments */ stand for elided arrays.
    const text = block.replaceAll(/\/\*.*?\*\//g, "");
    try {
      JSON.parse(text);
    } catch {
      for (const line of text.split("\n").filter((l) => l.trim() !== "")) JSON.parse(line);
    }
  }
});
