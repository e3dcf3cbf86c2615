/**
 * A deliberately naive chat server: the baseline the bench measures the real one against.
 *
 * Same wire subset as the real server (hello → welcome, join → joined, say → message to every
 * member, leave notices), written the way a first version usually is: `Deno.serve` plus
 * `upgradeWebSocket`, a Map of rooms, and on each `say` a loop calling `socket.send` once per
 * member. No batching, no send queue bound, no storage, no rate limit. Do not deploy it.
 *
 * Usage: deno run -A bench/naive_server.ts --port 0
 * (--rate-limit, --max-connections, --send-queue-bytes and --data are accepted and ignored so the
 * bench can start either server with the same arguments.)
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

interface Member {
  name: string;
  socket: WebSocket;
  rooms: Set<string>;
}

const rooms = new Map<string, Set<Member>>();
const seqs = new Map<string, number>();
let connections = 0;

function broadcast(room: string, line: string): void {
  for (const m of rooms.get(room) ?? []) {
    if (m.socket.readyState === WebSocket.OPEN) m.socket.send(line);
  }
}

function leave(member: Member, room: string): void {
  const set = rooms.get(room);
  if (!set?.delete(member)) return;
  if (set.size === 0) rooms.delete(room);
  broadcast(room, presenceFrame("leave", room, member.name));
}

function handleSocket(socket: WebSocket): void {
  let member: Member | undefined;
  connections++;
  socket.onmessage = (event) => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(String(event.data));
    } catch {
      return;
    }
    if (!member) {
      if (msg.type !== "hello" || typeof msg.name !== "string") return socket.close(4000);
      member = { name: msg.name, socket, rooms: new Set() };
      socket.send(welcomeFrame(msg.name, "naive"));
      return;
    }
    const room = typeof msg.room === "string" ? msg.room.toLowerCase() : "";
    if (msg.type === "join" && room) {
      let set = rooms.get(room);
      if (!set) rooms.set(room, set = new Set());
      broadcast(room, presenceFrame("join", room, member.name));
      set.add(member);
      member.rooms.add(room);
      socket.send(joinedFrame(room, [...set].map((m) => m.name), seqs.get(room) ?? 0));
    } else if (msg.type === "leave" && room) {
      leave(member, room);
      member.rooms.delete(room);
      socket.send(leftFrame(room));
    } else if (msg.type === "say" && room && member.rooms.has(room)) {
      const seq = (seqs.get(room) ?? 0) + 1;
      seqs.set(room, seq);
      broadcast(room, messageFrame(room, seq, member.name, msg.text, msg.cid));
    }
  };
  socket.onclose = () => {
    connections--;
    if (member) { for (const room of member.rooms) leave(member, room); }
  };
  socket.onerror = () => {};
}

function main(): void {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: REFERENCE_SERVER_OPTIONS,
  });
  Deno.serve({
    hostname: "127.0.0.1",
    port: Number(values.port),
    onListen: ({ port }) => console.log(`Listening on http://127.0.0.1:${port}/`),
  }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") return Response.json({ ok: true, connections, rooms: rooms.size });
    if (path === "/ws" && req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      handleSocket(socket);
      return response;
    }
    return new Response("Not found", { status: 404 });
  });
}

if (import.meta.main) main();
