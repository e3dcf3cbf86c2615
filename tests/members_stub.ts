/**
 * A scripted stand-in for the server, for browser tests of the member list (issue 16): it serves
 * the real embedded UI (http/assets.ts, with the real CSP) and speaks just enough of the protocol
 * over /ws for one room with a large roster — `welcome`, a `joined` bounded to
 * {@linkcode STUB_JOINED_MEMBERS} names plus the count, `members` pages, and whatever presence
 * lines the test pushes. It records every command the page sent, so a test can see what was asked.
 */
import { assets } from "../http/assets.ts";
import { CONTENT_SECURITY_POLICY } from "../http/server.ts";
import { sortKey } from "../hub/roster.ts";
import {
  DEFAULT_MEMBERS_PAGE,
  MAX_JOINED_MEMBERS,
  MAX_MEMBERS_PAGE,
  nameKey,
} from "../protocol/protocol.ts";

/** Names in a `joined`, as the real server bounds it. */
export const STUB_JOINED_MEMBERS = MAX_JOINED_MEMBERS;
/** A `members` page's size when the request names none, and its largest. */
export const STUB_PAGE_DEFAULT = DEFAULT_MEMBERS_PAGE;
export const STUB_PAGE_MAX = MAX_MEMBERS_PAGE;

/** One command the page sent. */
// deno-lint-ignore no-explicit-any
export type Command = Record<string, any>;

/** Members are one by their name key; pages come in the server's order (hub/roster.ts). */
const key = nameKey;
const byKey = (a: string, b: string) =>
  sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0;

/** A running stub: its URL, the room's roster (the test edits it) and the page's commands. */
export interface MemberStub extends AsyncDisposable {
  url: string;
  /** Everyone in the room, the page's own user included once it joined; kept sorted. */
  roster: string[];
  /** Every command received, in order. */
  commands: Command[];
  /** Adds and removes names; the roster stays sorted. */
  change(joined: string[], left: string[]): void;
  /** While true, `members` requests wait for `release()` instead of being answered. */
  hold: boolean;
  /** Answers every held `members` request, in order. */
  release(): void;
  /** Sends `frame` (an object, one line) to every page connected. */
  push(frame: Command): void;
  close(): Promise<void>;
}

/** Starts the stub on a free loopback port with `roster` in room "general". */
export function startMemberStub(roster: string[]): MemberStub {
  const sockets = new Set<WebSocket>();
  const held: (() => void)[] = [];
  const stub: MemberStub = {
    url: "",
    roster: [...roster].sort(byKey),
    commands: [],
    change(joined, left) {
      const gone = new Set(left.map(key));
      const next = stub.roster.filter((n) => !gone.has(key(n))).concat(joined);
      stub.roster = next.sort(byKey);
    },
    hold: false,
    release() {
      for (const answerHeld of held.splice(0)) answerHeld();
    },
    push(frame) {
      for (const s of sockets) if (s.readyState === WebSocket.OPEN) s.send(JSON.stringify(frame));
    },
    async close() {
      for (const s of sockets) s.close();
      await server.shutdown();
    },
    [Symbol.asyncDispose]: () => stub.close(),
  };

  const answer = (socket: WebSocket, c: Command) => {
    const send = (frame: Command) => socket.send(JSON.stringify(frame));
    if (c.type === "hello") {
      send({ type: "welcome", name: c.name, resume: "stub", limits: {}, version: "stub" });
    } else if (c.type === "join") {
      stub.change([String(c.name ?? "")].filter(Boolean), []);
      send({
        type: "joined",
        room: c.room,
        members: stub.roster.slice(0, STUB_JOINED_MEMBERS),
        count: stub.roster.length,
        history: [],
        seq: 0,
      });
    } else if (c.type === "members") {
      const limit = Math.min(STUB_PAGE_MAX, Number(c.limit ?? STUB_PAGE_DEFAULT));
      const from = c.after === undefined
        ? 0
        : stub.roster.findIndex((n) => sortKey(n) > sortKey(String(c.after)));
      const page = from < 0 ? [] : stub.roster.slice(from, from + limit);
      const more = from >= 0 && from + limit < stub.roster.length;
      send({
        type: "members",
        room: c.room,
        members: page,
        count: stub.roster.length,
        ...more ? { next: page.at(-1) } : {},
      });
    }
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/ws") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      let name = "";
      socket.onmessage = (e) => {
        const c = JSON.parse(String(e.data));
        if (c.type === "hello") name = c.name;
        // The join names its user in the roster, as the server's membership does.
        stub.commands.push(c);
        if (c.type === "members" && stub.hold) held.push(() => answer(socket, c));
        else answer(socket, c.type === "join" ? { ...c, name } : c);
      };
      socket.onopen = () => sockets.add(socket);
      socket.onclose = () => sockets.delete(socket);
      return response;
    }
    if (path === "/config.json") return Response.json({ auth: "none", password: false });
    const asset = assets.get(path);
    if (!asset) return new Response("not found", { status: 404 });
    return new Response(asset.body, {
      headers: { "content-type": asset.type, "content-security-policy": CONTENT_SECURITY_POLICY },
    });
  });
  stub.url = `http://127.0.0.1:${server.addr.port}/`;
  return stub;
}
