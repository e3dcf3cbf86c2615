/**
 * Mints a sign-in token for a server started with `--jwt-secret`, for operators who run no identity
 * provider: `CHAT_JWT_SECRET=… deno task token --sub alice --ttl 8h` prints an HS256 JWT whose `sub`
 * is the chat name. The signing is jwt.ts's, the same module the server verifies with.
 */
import { parseArgs } from "node:util";
import { signJwt } from "../auth/jwt.ts";
import { nameProblem } from "../protocol/protocol.ts";

/** How long a token lasts unless `--ttl` says otherwise, in seconds (one day). */
export const DEFAULT_TOKEN_TTL_SECONDS = 24 * 60 * 60;
/** Longest `--ttl` accepted, in seconds (one year): a token cannot be revoked, only expire. */
export const MAX_TOKEN_TTL_SECONDS = 365 * 24 * 60 * 60;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Reads a lifetime such as `90s`, `15m`, `8h` or `7d` into seconds; a bare number is seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  const seconds = m === null ? NaN : Number(m[1]) * UNIT_SECONDS[m[2] || "s"];
  if (!(seconds > 0) || seconds > MAX_TOKEN_TTL_SECONDS) {
    throw new Error(
      `Cannot mint token: --ttl must be 1s to 365d, as in 90s, 15m, 8h or 7d (got "${text}")`,
    );
  }
  return seconds;
}

/** Options for {@linkcode mintToken}. */
export interface MintOptions {
  /** The server's `--jwt-secret`. */
  secret: string;
  /** The chat name the token signs in as; it must be a valid name. */
  sub: string;
  /** Lifetime in seconds. @default DEFAULT_TOKEN_TTL_SECONDS */
  ttlSeconds?: number;
  /** The clock, in ms since the epoch. @default Date.now */
  now?: () => number;
}

/** Signs a token for `sub` that expires `ttlSeconds` from now. */
export async function mintToken(options: MintOptions): Promise<string> {
  if (options.secret === "") {
    throw new Error("Cannot mint token: no secret (give --secret or set CHAT_JWT_SECRET)");
  }
  const problem = nameProblem(options.sub);
  if (problem !== null) throw new Error(`Cannot mint token: --sub ${problem}`);
  const iat = Math.floor((options.now ?? Date.now)() / 1000);
  const exp = iat + (options.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS);
  return await signJwt({ sub: options.sub, iat, exp }, options.secret);
}

const USAGE = `Usage: deno task token --sub NAME [--ttl 24h] [--secret SECRET]

Prints an HS256 sign-in token for a server started with --jwt-secret.
  --sub NAME       the chat name the token signs in as
  --ttl TIME       how long it lasts: 90s, 15m, 8h, 7d (default 24h, at most 365d)
  --secret SECRET  the server's --jwt-secret; better set CHAT_JWT_SECRET, which keeps it out of ps
`;

/** The command line: prints the token, or one "Cannot mint token: …" line and exits 2. */
export async function main(args: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args,
      options: {
        sub: { type: "string" },
        ttl: { type: "string" },
        secret: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (values.sub === undefined) throw new Error("Cannot mint token: --sub NAME is required");
    const secret = values.secret ?? Deno.env.get("CHAT_JWT_SECRET") ?? "";
    const ttlSeconds = values.ttl === undefined ? undefined : parseTtl(values.ttl);
    console.log(await mintToken({ secret, sub: values.sub, ttlSeconds }));
    return 0;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    console.error(message.startsWith("Cannot") ? message : `Cannot mint token: ${message}`);
    console.error(USAGE);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
