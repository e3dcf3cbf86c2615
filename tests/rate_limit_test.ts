import assert from "node:assert/strict";
import { FloodWindow, parseRate, TokenBucket } from "../http/rate_limit.ts";

Deno.test("a token bucket allows a burst, then refills at its rate", () => {
  let now = 0;
  const bucket = new TokenBucket({ perSecond: 10, burst: 20 }, () => now);
  for (let i = 0; i < 20; i++) assert.equal(bucket.take(), true, `take ${i}`);
  assert.equal(bucket.take(), false);
  now += 100; // 0.1 s refills one token at 10/s
  assert.equal(bucket.take(), true);
  assert.equal(bucket.take(), false);
  now += 60_000; // a long pause refills only up to the burst
  for (let i = 0; i < 20; i++) assert.equal(bucket.take(), true);
  assert.equal(bucket.take(), false);
});

Deno.test("a clock that goes backwards never adds tokens", () => {
  let now = 1000;
  const bucket = new TokenBucket({ perSecond: 1, burst: 1 }, () => now);
  assert.equal(bucket.take(), true);
  now = 0;
  assert.equal(bucket.take(), false);
});

Deno.test("a flood window trips on the 101st event within a minute, not on slower ones", () => {
  let now = 0;
  const flood = new FloodWindow(100, 60_000, () => now);
  for (let i = 0; i < 100; i++) assert.equal(flood.record(), false);
  assert.equal(flood.record(), true);
  const slow = new FloodWindow(100, 60_000, () => now);
  for (let i = 0; i < 300; i++) {
    now += 700; // 100 events take 70 s
    assert.equal(slow.record(), false);
  }
});

Deno.test("rates parse from R/s,B or off", () => {
  assert.deepEqual(parseRate("10/s,20"), { perSecond: 10, burst: 20 });
  assert.deepEqual(parseRate("2.5/s"), { perSecond: 2.5, burst: 3 });
  assert.equal(parseRate("off"), "off");
  for (const bad of ["", "10", "10/m", "0/s,1", "10/s,0", "x/s"]) {
    assert.equal(parseRate(bad), null, bad);
  }
});
