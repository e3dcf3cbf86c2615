/** The bench's --compare-server passes an older checkout only the flags that checkout knows. */
import assert from "node:assert/strict";
import { withKnownFlags } from "../bench/main.ts";

Deno.test("flags an older server does not list are left out, with their values", () => {
  const args = [
    "--rate-limit",
    "off",
    "--max-pending-per-ip",
    "0",
    "--memory-limit=0",
    "--data",
    ":memory:",
  ];
  const known = new Set(["--rate-limit", "--data"]);
  assert.deepEqual(withKnownFlags(args, known), ["--rate-limit", "off", "--data", ":memory:"]);
});

Deno.test("every flag a server lists is passed on as given", () => {
  const args = ["--rate-limit", "off", "--trust-proxy", "--max-connections", "20000"];
  const known = new Set(["--rate-limit", "--trust-proxy", "--max-connections"]);
  assert.deepEqual(withKnownFlags(args, known), args);
});
