/**
 * `limits.auth` in the welcome names the sign-in the server wants, as docs/protocol.md says:
 * `"none"`, `"password"` (`--password`) or `"token"` (`--jwt-secret`), against the real process.
 */
import assert from "node:assert/strict";
import { mintToken } from "../scripts/token.ts";
import { spawnServer, TestClient } from "./helpers.ts";

const cases: { auth: string; flags: string[]; hello: () => Promise<Record<string, string>> }[] = [
  { auth: "none", flags: [], hello: () => Promise.resolve({}) },
  {
    auth: "password",
    flags: ["--password", "s3cret"],
    hello: () => Promise.resolve({ password: "s3cret" }),
  },
  {
    auth: "token",
    flags: ["--jwt-secret", "k3y"],
    hello: async () => ({ token: await mintToken({ secret: "k3y", sub: "alice" }) }),
  },
];

for (const { auth, flags, hello } of cases) {
  Deno.test(`the welcome says limits.auth "${auth}" on a server started with ${flags[0] ?? "no sign-in flag"}`, async () => {
    const server = await spawnServer(["--port", "0", ...flags]);
    try {
      const alice = await TestClient.connect(server.wsUrl, "alice", await hello());
      const welcome = alice.messages.find((m) => m.type === "welcome")!;
      assert.equal(welcome.name, "alice");
      assert.equal(welcome.limits.auth, auth);
      await alice.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
}
