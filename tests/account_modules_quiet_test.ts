/**
 * The account modules log nothing, so no password, token or hash can reach a log through them:
 * none of them writes to the console or imports the logger. Logging account events (the name and
 * the event, nothing else) is the caller's job.
 */
import assert from "node:assert/strict";

const QUIET_MODULES = [
  "auth/password.ts",
  "auth/sign_in_limit.ts",
  "store/accounts.ts",
  "store/sqlite_accounts.ts",
  "redis/redis_accounts.ts",
];

Deno.test("the password, sign-in limit and account store modules neither log nor import the logger", async () => {
  for (const path of QUIET_MODULES) {
    const source = await Deno.readTextFile(new URL(`../${path}`, import.meta.url));
    assert.doesNotMatch(source, /\bconsole\s*\./, `${path} writes to the console`);
    assert.doesNotMatch(source, /ops\/log\.ts|from "\.\/log\.ts"/, `${path} imports the logger`);
    assert.doesNotMatch(source, /Deno\.std(out|err)/, `${path} writes to stdout or stderr`);
  }
});
