/**
 * Bun's pub/sub as a chat server: the same wire subset as bench/naive_server.ts (hello → welcome,
 * join → joined, say → message with the room's seq to every member, leave notices), with each
 * room a Bun topic and every broadcast one `server.publish`. A reference point for the bench
 * (`--bun PATH`), not a product: no storage, no rate limit, Bun's own backpressure defaults.
 *
 * Usage: bun bench/bun_server.ts --port 0
 * (the bench's server flags are accepted and ignored, as the naive server does.)
 */

import { parseArgs } from "node:util";
import {
  joinedFrame,
  leftFrame,
  messageFrame,
  presenceFrame,
  REFERENCE_SERVER_OPTIONS,
  welcomeFrame,
} from "./reference_wire.ts";

/** The parts of Bun's API this file uses (typed here so `deno check` covers the file). */
interface BunSocket {
  data: { name?: string; rooms: Set<string> };
  send(text: string): number;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  close(code?: number): void;
}
interface BunServer {
  port: number;
  upgrade(req: Request, options: { data: BunSocket["data"] }): boolean;
  publish(topic: string, text: string): number;
}
declare const Bun: {
  argv: string[];
  serve(options: {
    hostname: string;
    port: number;
    fetch(req: Request, server: BunServer): Response | undefined;
    websocket: {
      open(ws: BunSocket): void;
      message(ws: BunSocket, data: string | Uint8Array): void;
      close(ws: BunSocket): void;
    };
  }): BunServer;
};

/** Member names per room, for `joined`; Bun keeps the subscriptions themselves. */
const members = new Map<string, Set<string>>();
const seqs = new Map<string, number>();
let connections = 0;
let server: BunServer;

function leave(ws: BunSocket, room: string): void {
  const set = members.get(room);
  if (!set?.delete(ws.data.name!)) return;
  ws.unsubscribe(room);
  if (set.size === 0) members.delete(room);
  server.publish(room, presenceFrame("leave", room, ws.data.name!));
}

function onMessage(ws: BunSocket, data: string | Uint8Array): void {
  let msg: Record<string, unknown>;
  try {
    msg = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
  } catch {
    return;
  }
  const me = ws.data;
  if (me.name === undefined) {
    if (msg.type !== "hello" || typeof msg.name !== "string") return ws.close(4000);
    me.name = msg.name;
    ws.send(welcomeFrame(msg.name, "bun"));
    return;
  }
  const room = typeof msg.room === "string" ? msg.room.toLowerCase() : "";
  if (msg.type === "join" && room) {
    let set = members.get(room);
    if (!set) members.set(room, set = new Set());
    server.publish(room, presenceFrame("join", room, me.name));
    set.add(me.name);
    me.rooms.add(room);
    ws.subscribe(room);
    ws.send(joinedFrame(room, [...set], seqs.get(room) ?? 0));
  } else if (msg.type === "leave" && room) {
    leave(ws, room);
    me.rooms.delete(room);
    ws.send(leftFrame(room));
  } else if (msg.type === "say" && room && me.rooms.has(room)) {
    const seq = (seqs.get(room) ?? 0) + 1;
    seqs.set(room, seq);
    server.publish(room, messageFrame(room, seq, me.name, msg.text, msg.cid));
  }
}

function main(): void {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    strict: true,
    options: REFERENCE_SERVER_OPTIONS,
  });
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: Number(values.port),
    fetch(req, srv) {
      const path = new URL(req.url).pathname;
      if (path === "/healthz") {
        return Response.json({ ok: true, connections, rooms: members.size });
      }
      if (path === "/ws" && srv.upgrade(req, { data: { rooms: new Set() } })) return undefined;
      return new Response("Not found", { status: 404 });
    },
    websocket: {
      open() {
        connections++;
      },
      message: onMessage,
      close(ws) {
        connections--;
        for (const room of ws.data.rooms) leave(ws, room);
      },
    },
  });
  console.log(`Listening on http://127.0.0.1:${server.port}/`);
}

main();
