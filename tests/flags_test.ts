/**
 * Flags as a user types them, against `main.ts` as a process: what each one really changes in the
 * running server. How every flag parses is in config_test.ts; this file holds what only a real
 * process can show (addresses, permissions, files, the environment).
 */
import assert from "node:assert/strict";
import { spawnServer, TestClient } from "./helpers.ts";

/** Open connections per address the server allows by default (`--max-connections-per-ip`). */
const PER_ADDRESS_LIMIT = 20;
/** More upgrades than one address may hold, each claiming a different forwarded address. */
const FORWARDED_UPGRADES = PER_ADDRESS_LIMIT + 5;

/** The forwarded address of upgrade `i`: what the proxy appended, after what the client claimed. */
const forwardedFor = (i: number) => `198.51.100.7, 203.0.113.${i}`;

/** Opens `FORWARDED_UPGRADES` sockets with distinct X-Forwarded-For headers: which were upgraded. */
async function forwardedUpgrades(
  wsUrl: string,
): Promise<{ opened: TestClient[]; refused: number }> {
  const outcomes = await Promise.all(
    Array.from({ length: FORWARDED_UPGRADES }, async (_, i) => {
      const c = new TestClient(wsUrl, { headers: { "x-forwarded-for": forwardedFor(i + 1) } });
      try {
        await c.opened;
        return c;
      } catch {
        return null;
      }
    }),
  );
  const opened = outcomes.filter((c) => c !== null);
  return { opened, refused: outcomes.length - opened.length };
}

for (
  const [how, args] of [
    ["alone", ["--trust-proxy"]],
    ["followed by another flag", ["--trust-proxy", "--log-level", "info"]],
  ] as const
) {
  Deno.test(`--trust-proxy ${how}: each client is its last X-Forwarded-For entry, for limits and logs`, async () => {
    const server = await spawnServer(["--port", "0", ...args]);
    try {
      const { opened, refused } = await forwardedUpgrades(server.wsUrl);
      assert.equal(refused, 0, `${refused} of ${FORWARDED_UPGRADES} upgrades were refused`);
      await Promise.all(opened.map(async (c, i) => {
        c.send({ type: "hello", name: `u${i + 1}` });
        await c.waitFor((m) => m.type === "welcome");
      }));
      const log = server.output();
      for (let i = 1; i <= FORWARDED_UPGRADES; i++) {
        const name = new RegExp(` hello .*name=u${i}(\\s|$)`);
        const line = log.split("\n").find((l) => name.test(l));
        assert.ok(line, `a hello line for u${i}\n${log}`);
        assert.match(line, new RegExp(`address=203\\.0\\.113\\.${i}(\\s|$)`));
      }
      assert.ok(!log.includes("198.51.100.7"), "the entry the client claimed is never used");
      await Promise.all(opened.map((c) => c.close()));
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
}

Deno.test("without --trust-proxy, X-Forwarded-For is ignored: one address, limited to 20", async () => {
  const server = await spawnServer(["--port", "0"]);
  try {
    const { opened, refused } = await forwardedUpgrades(server.wsUrl);
    assert.deepEqual(
      [opened.length, refused],
      [PER_ADDRESS_LIMIT, FORWARDED_UPGRADES - PER_ADDRESS_LIMIT],
    );
    assert.match(server.output(), /refused address=127\.0\.0\.1 code=too_many_connections/);
    await Promise.all(opened.map((c) => c.close()));
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
