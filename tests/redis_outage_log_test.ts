/**
 * With `--redis`, a server whose Redis goes away says so in its log once, with the address, and
 * says once that it is back, against a real redis-server that is stopped and started again.
 */
import assert from "node:assert/strict";
import { eventually, sleep, spawnServer } from "./helpers.ts";
import { startRedis } from "./redis_server.ts";
import { RECONNECT_MAX_DELAY_MS } from "../redis/redis_client.ts";

// Probe once: without redis-server the test is registered as ignored, with the reason.
const probe = await startRedis();
await probe?.stop();
const SKIP = probe === null;
/** How long the server may take to notice Redis gone or back, in ms (it reconnects every 1 s). */
const NOTICE_MS = 10_000;

Deno.test({
  name: `losing Redis and getting it back are logged once each, with the address${
    SKIP ? " (skipped: no redis-server)" : ""
  }`,
  ignore: SKIP,
  async fn() {
    const redis = await startRedis();
    if (redis === null) throw new Error("Cannot start redis-server");
    const server = await spawnServer(["--port", "0", "--redis", redis.url]);
    const lines = (event: string) =>
      server.output().split("\n").filter((l) => l.match(/^\S+ [A-Z]+ +(\S+)/)?.[1] === event);
    const health = async () => (await (await fetch(`${server.url}healthz`)).json()).status;
    try {
      assert.equal(await health(), "ok");
      await redis.kill();
      await eventually(
        "/healthz says degraded",
        async () => await health() === "degraded",
        NOTICE_MS,
      );
      await eventually("the loss is logged", () => lines("redis_lost").length > 0, NOTICE_MS);
      // Several reconnect attempts fail meanwhile; none of them is logged again.
      await sleep(3 * RECONNECT_MAX_DELAY_MS);
      assert.equal(lines("redis_lost").length, 1, server.output());
      assert.equal(lines("redis_back").length, 0, server.output());
      assert.match(
        lines("redis_lost")[0],
        new RegExp(`^\\S+ WARN  redis_lost .*\\burl=redis://127\\.0\\.0\\.1:${redis.port}\\b`),
      );

      await redis.restart();
      await eventually("/healthz says ok", async () => await health() === "ok", NOTICE_MS);
      await eventually("the recovery is logged", () => lines("redis_back").length > 0, NOTICE_MS);
      await sleep(RECONNECT_MAX_DELAY_MS);
      assert.equal(lines("redis_back").length, 1, server.output());
      assert.equal(lines("redis_lost").length, 1, server.output());
      assert.match(
        lines("redis_back")[0],
        new RegExp(`^\\S+ INFO  redis_back ms=\\d+ url=redis://127\\.0\\.0\\.1:${redis.port}\\b`),
      );
    } finally {
      await server.stop();
      await redis.stop();
    }
  },
});
