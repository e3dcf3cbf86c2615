/** Lookalike names (issue 14, item 4): invisible characters are refused; confusables collide. */
import assert from "node:assert/strict";
import { nameKey, nameProblem, parseHello } from "../protocol/protocol.ts";
import { CONFUSABLES_UNICODE_VERSION, PROTOTYPES, skeleton } from "../protocol/skeleton.ts";

/** The names found accepted beside `alice` / `bob` / `admin`, each looking the same in the UI. */
const LOOKALIKES: [string, string, string][] = [
  ["\u0430lice", "alice", "Cyrillic а"],
  ["b\u03bfb", "bob", "Greek ο"],
  ["al\u0131ce", "alice", "dotless ı"],
  ["\u0430dmin", "admin", "Cyrillic а (a JWT sub)"],
];

Deno.test("a name with a Cyrillic а, a Greek ο or a dotless ı collides with the Latin name it mimics", () => {
  for (const [fake, real, what] of LOOKALIKES) {
    assert.equal(nameProblem(fake), null, `${what}: the name itself is valid`);
    assert.equal(nameKey(fake), nameKey(real), what);
  }
});

Deno.test("a Hangul filler after a name, or alone, is refused as invisible", () => {
  for (const name of ["alice\u3164", "\u3164", "\u3164\u3164"]) {
    const problem = nameProblem(name);
    assert.match(problem ?? "", /invisible/, JSON.stringify(name));
    assert.match(problem ?? "", /U\+3164/, "the reason names the character");
  }
  const hello = parseHello(JSON.stringify({ type: "hello", name: "alice\u3164" }));
  assert.ok(!hello.ok);
  assert.equal(hello.message, "Cannot start: name may not hold invisible characters (U+3164)");
});

Deno.test("every kind of invisible or blank character is refused in a name, wherever it stands", () => {
  const invisible = [
    0x115f, // HANGUL CHOSEONG FILLER
    0x1160, // HANGUL JUNGSEONG FILLER
    0xffa0, // HALFWIDTH HANGUL FILLER
    0x2800, // BRAILLE PATTERN BLANK
    0x1d159, // MUSICAL SYMBOL NULL NOTEHEAD
    0x200b, // ZERO WIDTH SPACE
    0x200c, // ZERO WIDTH NON-JOINER
    0x200d, // ZERO WIDTH JOINER
    0x2060, // WORD JOINER
    0xfeff, // ZERO WIDTH NO-BREAK SPACE
    0x00ad, // SOFT HYPHEN
    0x034f, // COMBINING GRAPHEME JOINER
    0x180e, // MONGOLIAN VOWEL SEPARATOR
    0x17b4, // KHMER VOWEL INHERENT AQ
    0xfe0f, // VARIATION SELECTOR-16
    0xe0100, // VARIATION SELECTOR-17
    0x202e, // RIGHT-TO-LEFT OVERRIDE
    0x200e, // LEFT-TO-RIGHT MARK
    0x2066, // LEFT-TO-RIGHT ISOLATE
    0x061c, // ARABIC LETTER MARK
    0xe0041, // TAG LATIN CAPITAL LETTER A
    0x3000, // IDEOGRAPHIC SPACE
    0x00a0, // NO-BREAK SPACE
  ];
  for (const cp of invisible) {
    const c = String.fromCodePoint(cp);
    const hex = `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
    for (const name of [c, `al${c}ice`, `alice${c}`]) {
      assert.equal(
        nameProblem(name),
        `name may not hold invisible characters (${hex})`,
        `${hex} in ${JSON.stringify(name)}`,
      );
    }
  }
});

Deno.test("names in other scripts are accepted and keep apart; only lookalikes collide", () => {
  const names = [
    "Łukasz",
    "José",
    "Иван",
    "Илья",
    "李雷",
    "Ωmega",
    "Ελένη",
    "محمد",
    "ヒロシ",
    "Zoë_2.0-x",
    "alice",
    "bob",
    "Ivan",
    "Jose",
    "Lukasz",
    "Omega",
  ];
  for (const name of names) assert.equal(nameProblem(name), null, name);
  // A whole-script Cyrillic or Greek name is a name of its own, not a lookalike of a Latin one.
  const keys = new Map(names.map((n) => [nameKey(n), n]));
  assert.equal(keys.size, names.length, `two of these share a key: ${[...keys.values()]}`);
});

Deno.test("names still collide case-insensitively and across NFKC forms", () => {
  assert.equal(nameKey("Alice"), nameKey("alice"));
  assert.equal(nameKey("ALICE"), nameKey("alice"));
  assert.equal(nameKey("ａｌｉｃｅ"), nameKey("alice")); // fullwidth letters
  assert.equal(nameKey("Jos\u00e9"), nameKey("Jose\u0301")); // é precomposed and decomposed
  assert.equal(nameKey("ИВАН"), nameKey("Иван"));
  assert.notEqual(nameKey("alice"), nameKey("alicf"));
});

Deno.test("capitals and digits that mimic small letters collide once case is folded", () => {
  assert.equal(nameKey("\u0410LICE"), nameKey("alice")); // Cyrillic capital А
  assert.equal(nameKey("B\u039fB"), nameKey("bob")); // Greek capital Ο
  assert.equal(nameKey("b0b"), nameKey("bob")); // digit zero
  assert.equal(nameKey("a1ice"), nameKey("alice")); // digit one
  assert.equal(nameKey("rnary"), nameKey("mary")); // r n side by side
});

Deno.test("skeleton follows Unicode TR39: NFD, each character to its prototype, NFD again", () => {
  assert.match(CONFUSABLES_UNICODE_VERSION, /^\d+\.\d+\.\d+$/);
  assert.equal(skeleton("\u{1d52d}\u{1d4b6}\u1eff\u{1d561}\u{1d552}\u2113"), "paypal"); // 𝔭𝒶ỿ𝕡𝕒ℓ
  assert.equal(skeleton("\u0430"), "a");
  assert.equal(skeleton("m"), "rn");
  assert.equal(skeleton("plain"), "plain");
  // The accent survives, decomposed: é is e + U+0301 in any skeleton.
  assert.equal(skeleton("\u00e9"), "e\u0301");
});

Deno.test("a name key is its own key, for every character of the confusables table", () => {
  const samples = [
    ...LOOKALIKES.flat(),
    ...Object.keys(PROTOTYPES).flatMap((c) => [c, c.toUpperCase(), `x${c}${c}y`]),
    "ǅ",
    "ﬃ",
    "ẞ",
    "İstanbul",
    "ΟΔΟΣ",
    "\u1e9b\u0323",
  ];
  for (const s of samples) assert.equal(nameKey(nameKey(s)), nameKey(s), JSON.stringify(s));
});

/**
 * The browser's name check, loaded at run time: its file references the DOM library, which would
 * clash with Deno's types if the type check followed it here.
 */
const wire: { nameProblem(name: string): string } = await import(
  new URL("../static/wire.js", import.meta.url).href
);

Deno.test("the browser refuses the same names as the server, before it sends them", () => {
  const names = [
    "alice",
    "Иван",
    "李雷",
    "Zoë_2.0-x",
    "\u0430lice",
    "alice\u3164",
    "\u3164",
    "a\u200db",
    "bob\ufe0f",
    "\u2800",
    "x\u{1d159}",
    "a b",
    "<b>",
    "x".repeat(33),
  ];
  let invisibleNames = 0;
  for (const name of names) {
    const server = nameProblem(name);
    assert.equal(wire.nameProblem(name) === "", server === null, JSON.stringify(name));
    const invisible = /^name may not hold invisible characters \((U\+[0-9A-F]+)\)$/.exec(
      server ?? "",
    );
    if (invisible !== null) {
      invisibleNames++;
      assert.equal(
        wire.nameProblem(name),
        `Names may not hold invisible characters (${invisible[1]}).`,
      );
    }
  }
  assert.equal(invisibleNames, 6);
});
