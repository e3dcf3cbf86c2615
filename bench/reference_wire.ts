/**
 * The wire subset the bench's reference servers speak (bench/naive_server.ts on Deno,
 * bench/bun_server.ts on Bun): the frames they send and the flags they accept, written once so the
 * two baselines cannot drift apart. Plain TypeScript with no runtime API, so both runtimes load it.
 */

/**
 * The flags a reference server takes: a port, and the real server's flags the bench passes to every
 * target (accepted and ignored), for `node:util`'s parseArgs.
 */
export const REFERENCE_SERVER_OPTIONS = {
  port: { type: "string", default: "0" },
  "rate-limit": { type: "string" },
  "max-connections": { type: "string" },
  "send-queue-bytes": { type: "string" },
  data: { type: "string" },
} as const;

/** The reply to a hello: the name as given, no resume token, the real server's default limits. */
export function welcomeFrame(name: string, version: string): string {
  return JSON.stringify({
    type: "welcome",
    name,
    resume: "",
    limits: {
      maxTextChars: 4000,
      maxFrameBytes: 16384,
      maxRooms: 32,
      historyLimit: 200,
      rate: null,
    },
    version,
  });
}

/** The reply to a join: every member's name, no history, the room's last seq. */
export function joinedFrame(room: string, members: string[], seq: number): string {
  return JSON.stringify({ type: "joined", room, members, history: [], seq });
}

/** A join or leave notice to a room's members. */
export function presenceFrame(type: "join" | "leave", room: string, user: string): string {
  return JSON.stringify({ type, room, user, ts: Date.now() });
}

/** The reply to a leave. */
export function leftFrame(room: string): string {
  return JSON.stringify({ type: "left", room });
}

/** A message to a room's members; `cid` is echoed when the say carried a string one. */
export function messageFrame(
  room: string,
  seq: number,
  from: string,
  text: unknown,
  cid: unknown,
): string {
  const out: Record<string, unknown> = { type: "message", room, seq, from, text, ts: Date.now() };
  if (typeof cid === "string") out.cid = cid;
  return JSON.stringify(out);
}
