import assert from "node:assert/strict";
import {
  codePointLength,
  messageLine,
  nameKey,
  nameProblem,
  normalizeRoom,
  parseCommand,
  parseHello,
} from "../protocol/protocol.ts";

const limits = { maxTextChars: 4000 };
const parse = (v: unknown) => parseCommand(typeof v === "string" ? v : JSON.stringify(v), limits);

function errorCode(v: unknown): string | undefined {
  const r = parse(v);
  return r.ok ? undefined : r.code;
}

Deno.test("hello needs a valid name and nothing but strings for resume, password and token", () => {
  assert.deepEqual(parseHello('{"type":"hello","name":"alice"}'), {
    ok: true,
    value: { type: "hello", name: "alice" },
  });
  const withResume = parseHello('{"type":"hello","name":"bob","resume":"t"}');
  assert.ok(withResume.ok && withResume.value.resume === "t");
  for (
    const bad of [
      "nope",
      "[]",
      '{"type":"join","room":"x"}',
      '{"type":"hello"}',
      '{"type":"hello","name":""}',
      '{"type":"hello","name":"a b"}',
      '{"type":"hello","name":"alice","resume":5}',
      `{"type":"hello","name":"${"x".repeat(33)}"}`,
    ]
  ) {
    assert.equal(parseHello(bad).ok, false, bad);
  }
});

Deno.test("names allow Unicode letters, digits and _ - . up to 32 characters", () => {
  assert.equal(nameProblem("alice"), null);
  assert.equal(nameProblem("Zoë_2.0-x"), null);
  assert.equal(nameProblem("名前"), null);
  assert.equal(nameProblem("x".repeat(32)), null);
  assert.match(nameProblem("x".repeat(33))!, /1-32/);
  assert.match(nameProblem("")!, /1-32/);
  for (const bad of ["a b", "<b>", "a@b", "emoji😀", "tab\t"]) {
    assert.notEqual(nameProblem(bad), null, bad);
  }
});

Deno.test("names may hold combining marks after a letter, as Devanagari, Thai and decomposed Latin need, but not a stack of them", () => {
  for (const name of ["अनिल", "सुरेश", "สมชาย", "Zoe\u0308", "Nguye\u0302\u0303n", "क्षत्रिय"]) {
    assert.equal(nameProblem(name), null, name);
  }
  assert.match(nameProblem("\u0301abc")!, /only letters/, "a mark cannot start a name");
  assert.match(nameProblem("Z\u0301\u0302\u0303\u0304algo")!, /combining marks/);
  // Composed and decomposed spellings are one name.
  assert.equal(nameKey("Zoe\u0308"), nameKey("Zoë"));
});

Deno.test("names collide case-insensitively after NFKC normalisation", () => {
  assert.equal(nameKey("Alice"), nameKey("alice"));
  assert.equal(nameKey("ａｌｉｃｅ"), nameKey("alice")); // fullwidth letters
  assert.notEqual(nameKey("alice"), nameKey("alicf"));
});

Deno.test("room names are lower-cased and limited to 1-32 of a-z 0-9 _ -", () => {
  assert.equal(normalizeRoom("General"), "general");
  assert.equal(normalizeRoom("dev_ops-2"), "dev_ops-2");
  assert.equal(normalizeRoom(""), null);
  assert.equal(normalizeRoom("a".repeat(33)), null);
  assert.equal(normalizeRoom("no spaces"), null);
  assert.equal(normalizeRoom("ünïcode"), null);
});

Deno.test("every command parses into its typed form", () => {
  assert.deepEqual(parse({ type: "join", room: "General" }), {
    ok: true,
    value: { type: "join", room: "general" },
  });
  assert.deepEqual(parse({ type: "join", room: "g", since: 4 }), {
    ok: true,
    value: { type: "join", room: "g", since: 4 },
  });
  assert.deepEqual(parse({ type: "leave", room: "g" }), {
    ok: true,
    value: { type: "leave", room: "g" },
  });
  assert.deepEqual(parse({ type: "rooms" }), { ok: true, value: { type: "rooms" } });
  assert.deepEqual(parse({ type: "say", room: "g", text: "hi", cid: "c1" }), {
    ok: true,
    value: { type: "say", room: "g", text: "hi", cid: "c1" },
  });
  assert.deepEqual(parse({ type: "history", room: "g", before: 42 }), {
    ok: true,
    value: { type: "history", room: "g", before: 42, limit: 50 },
  });
  assert.deepEqual(parse({ type: "history", room: "g", after: 1000, limit: 200 }), {
    ok: true,
    value: { type: "history", room: "g", after: 1000, limit: 200 },
  });
  assert.deepEqual(parse({ type: "dm", to: "Bob", text: "yo" }), {
    ok: true,
    value: { type: "dm", to: "Bob", text: "yo" },
  });
  assert.deepEqual(parse({ type: "typing", room: "g" }), {
    ok: true,
    value: { type: "typing", room: "g" },
  });
});

Deno.test("a client cannot set from, seq or ts: unknown fields are dropped", () => {
  const r = parse({ type: "say", room: "g", text: "hi", from: "mallory", seq: 1, ts: 0 });
  assert.deepEqual(r, { ok: true, value: { type: "say", room: "g", text: "hi" } });
});

Deno.test("each malformed frame gets its own error code", () => {
  assert.equal(errorCode("{not json"), "bad_request");
  assert.equal(errorCode("[1,2]"), "bad_request");
  assert.equal(errorCode({ room: "g" }), "bad_request");
  assert.equal(errorCode({ type: "fly" }), "unknown_type");
  assert.equal(errorCode({ type: "say", room: "g" }), "bad_request");
  assert.equal(errorCode({ type: "say", room: "g", text: "" }), "bad_request");
  assert.equal(errorCode({ type: "say", room: "g", text: "x".repeat(4001) }), "too_long");
  assert.equal(
    errorCode({ type: "say", room: "g", text: "x", cid: "c".repeat(65) }),
    "bad_request",
  );
  assert.equal(errorCode({ type: "say", room: "g", text: "x", cid: 7 }), "bad_request");
  assert.equal(errorCode({ type: "join", room: "Bad Room" }), "room_invalid");
  assert.equal(errorCode({ type: "join", room: "g", since: -1 }), "bad_request");
  assert.equal(errorCode({ type: "join", room: "g", since: 1.5 }), "bad_request");
  assert.equal(errorCode({ type: "history", room: "g", limit: 201 }), "bad_request");
  assert.equal(errorCode({ type: "history", room: "g", limit: 0 }), "bad_request");
  assert.equal(errorCode({ type: "history", room: "g", before: 5, after: 1 }), "bad_request");
  assert.equal(errorCode({ type: "dm", to: "not a name", text: "x" }), "unknown_user");
  assert.equal(errorCode({ type: "hello", name: "again" }), "bad_request");
});

Deno.test("errors echo the cid of the frame that failed", () => {
  const r = parse({ type: "say", room: "Bad Room", text: "x", cid: "c9" });
  assert.deepEqual(r.ok ? null : [r.code, r.cid], ["room_invalid", "c9"]);
});

Deno.test("text length counts code points, so 4000 emoji fit and 4001 do not", () => {
  assert.equal(codePointLength("😀😀"), 2);
  assert.equal(parse({ type: "say", room: "g", text: "😀".repeat(4000) }).ok, true);
  assert.equal(errorCode({ type: "say", room: "g", text: "😀".repeat(4001) }), "too_long");
});

Deno.test("a message line carries every field and no raw newline", () => {
  const line = messageLine({ room: "g", seq: 3, from: "alice", text: "a\nb", ts: 7, cid: "c" });
  assert.ok(!line.includes("\n"));
  assert.deepEqual(JSON.parse(line), {
    type: "message",
    room: "g",
    seq: 3,
    from: "alice",
    text: "a\nb",
    ts: 7,
    cid: "c",
  });
});

Deno.test("a lone surrogate is cleaned from a text and refused in a cid", () => {
  // Raw JSON: JSON.stringify would escape the surrogates the same way a client does.
  const said = parse('{"type":"say","room":"g","text":"x\\ud800y","cid":"c1"}');
  assert.deepEqual(said, {
    ok: true,
    value: { type: "say", room: "g", text: "x\ufffdy", cid: "c1" },
  });
  const emoji = parse('{"type":"say","room":"g","text":"\\ud83d\\ude00"}');
  assert.deepEqual(emoji.ok && emoji.value, { type: "say", room: "g", text: "😀" });
  const bad = parse('{"type":"say","room":"g","text":"hi","cid":"k\\ud800"}');
  assert.deepEqual(bad.ok ? null : [bad.code, bad.cid], ["bad_request", "k\ud800"]);
});
