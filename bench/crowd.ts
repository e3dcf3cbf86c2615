/**
 * A crowd process: many members of one large room, for the large-room scenarios. It opens clients
 * at a set pace (hello, then join, with `since` after a restart), notes when each got `joined`,
 * sends, leaves and rejoins on request, and checks that each tracked client got every seq once.
 * Driven over stdin/stdout by bench/large_room.ts (see crowd_protocol.ts).
 *
 * Design: one state machine per client on raw payload bytes, never a JSON parse of room traffic.
 * Before `joined` a client looks only for its welcome and its `joined` line (the one line it parses,
 * for `seq`; `count` when the server sends one, else the list's length — it never relies on the
 * full member list). Afterwards, tracked clients scan message lines for their stamp and seq
 * (bench/stamp.ts): seqs in `joined`'s history count when the join asked `since`, live ones always;
 * live lines of texts sent in the measured window are latency samples. Untracked clients (the join
 * storm, idle connections) only read.
 *
 * Usage: deno run -A bench/crowd.ts [max-lifetime-seconds] [epoll|deno]
 */

import {
  type CrowdReply,
  type CrowdRequest,
  type CrowdStats,
  emptyCrowdStats,
} from "./crowd_protocol.ts";
import { EpollSocket } from "./epoll_client.ts";
import { addVerdict, emptyTally, SeqLedger } from "./exactly_once.ts";
import { type BenchSocket, wallNow } from "./frames.ts";
import { Histogram } from "./histogram.ts";
import { scanStamps, stampText } from "./stamp.ts";
import { RawWebSocket } from "./ws_client.ts";
import { serveLines } from "./line_server.ts";

/** The process exits by itself after this long even if the orchestrator vanished, in seconds. */
const DEFAULT_MAX_LIFETIME_S = 30 * 60;
/**
 * How long a crowd client waits for its upgrade, in ms: far past the load generators' 10 s,
 * because in a storm a busy server answers late, and a client waiting its turn should be counted
 * as slow to get in, not as failed.
 */
export const STORM_HANDSHAKE_TIMEOUT_MS = 120_000;
/** How often the pacers (open, send, churn) look at the clock, in ms. */
const PACE_TICK_MS = 5;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const WELCOME = encoder.encode('{"type":"welcome"');
const JOINED = encoder.encode('{"type":"joined"');
const LEFT = encoder.encode('{"type":"left"');
const ERROR = encoder.encode('{"type":"error"');
const NEWLINE = 0x0a;

/** One member of the room, across reconnects. */
interface Member {
  name: string;
  room: string;
  ws: BenchSocket | null;
  /** The session token from its latest welcome: its name is its account's, so it signs in with it. */
  token: string;
  state: "connecting" | "hello" | "joining" | "in" | "leaving" | "away";
  track: boolean;
  /** Wall ms its latest connection began, and when its latest join was answered. */
  connectAt: number;
  joinedAt: number;
  /** Whether its next join should ask `since` (after a restart, after a leave). */
  wantSince: boolean;
  /** Whether the latest join asked `since` (its history then counts as missed messages). */
  askedSince: boolean;
  /** Highest seq seen: `joined`'s seq or a message's. */
  lastSeq: number;
  /** Every seq received since its first `joined` (from its `since`, or that join's seq). */
  ledger: SeqLedger | null;
  /** When its `left` came, in the churn. */
  leftAt: number;
}

const members = new Map<string, Member>();
/** The latest `open`'s names, for `joins`. */
let latest: string[] = [];
const stats: CrowdStats = emptyCrowdStats();
const histogram = new Histogram();
let measureFrom = Infinity;
let measureTo = -Infinity;

const io = Deno.args[1] === "deno" ? "deno" : "epoll";
const openSocket = (url: URL): Promise<BenchSocket> =>
  io === "deno"
    ? RawWebSocket.connect(url, STORM_HANDSHAKE_TIMEOUT_MS)
    : EpollSocket.connect(url, STORM_HANDSHAKE_TIMEOUT_MS);

/** Index of `pattern` in `bytes[from..to)`, or -1. */
function find(bytes: Uint8Array, pattern: Uint8Array, from: number, to: number): number {
  const first = pattern[0];
  const last = to - pattern.length;
  outer: for (let i = from; i <= last; i++) {
    if (bytes[i] !== first) continue;
    for (let k = 1; k < pattern.length; k++) if (bytes[i + k] !== pattern[k]) continue outer;
    return i;
  }
  return -1;
}

function lineEnd(bytes: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) if (bytes[i] === NEWLINE) return i;
  return to;
}

function seeSeq(m: Member, seq: number): void {
  if (seq !== seq) return;
  if (!(seq <= m.lastSeq)) m.lastSeq = seq;
  if (!(seq <= stats.lastSeq)) stats.lastSeq = seq;
  m.ledger?.see(seq);
}

function sendJoin(m: Member): void {
  const since = m.wantSince && Number.isFinite(m.lastSeq) ? m.lastSeq : undefined;
  m.askedSince = since !== undefined;
  m.state = "joining";
  m.ws?.sendText(
    JSON.stringify({ type: "join", room: m.room, ...(since === undefined ? {} : { since }) }),
  );
}

function onJoined(m: Member, line: string, now: number): void {
  const joined: { seq?: unknown } = JSON.parse(line);
  const seq = typeof joined.seq === "number" ? joined.seq : NaN;
  if (m.track && m.ledger === null) {
    // Tracking starts here: after what it asked for, or after the room's seq when it asked nothing.
    m.ledger = new SeqLedger(m.askedSince ? m.lastSeq : seq);
  }
  if (!(seq <= m.lastSeq)) m.lastSeq = seq;
  if (!(seq <= stats.lastSeq)) stats.lastSeq = seq;
  m.state = "in";
  m.joinedAt = now;
  stats.joined++;
}

function onPayload(m: Member, bytes: Uint8Array, start: number, end: number, now: number): void {
  if (m.state === "hello") {
    const at = find(bytes, WELCOME, start, end);
    if (at < 0) return;
    m.token = JSON.parse(decoder.decode(bytes.subarray(at, lineEnd(bytes, at, end)))).resume;
    sendJoin(m);
    return;
  }
  let liveFrom = start;
  if (m.state === "joining") {
    const at = find(bytes, JOINED, start, end);
    if (at < 0) {
      if (find(bytes, ERROR, start, end) >= 0) stats.errors++;
      return;
    }
    const stop = lineEnd(bytes, at, end);
    const asked = m.askedSince;
    onJoined(m, decoder.decode(bytes.subarray(at, stop)), now);
    // History after `since` is what the client missed; history without `since` it already had.
    if (m.track && asked) scanStamps(bytes, at, stop, (_sent, _ts, seq) => seeSeq(m, seq));
    liveFrom = stop;
  }
  if (m.state === "leaving" && find(bytes, LEFT, liveFrom, end) >= 0) {
    m.state = "away";
    m.leftAt = now;
    stats.joined--;
  }
  if (!m.track || liveFrom >= end) return;
  scanStamps(bytes, liveFrom, end, (sentAt, _ts, seq) => {
    seeSeq(m, seq);
    if (sentAt >= measureFrom && sentAt < measureTo) histogram.record(now - sentAt);
  });
}

async function connect(m: Member, url: URL): Promise<void> {
  m.connectAt = wallNow();
  stats.lastConnectAt = m.connectAt;
  stats.opened++;
  m.state = "connecting";
  let ws: BenchSocket;
  try {
    ws = await openSocket(url);
  } catch {
    stats.failed++;
    return;
  }
  m.ws = ws;
  m.state = "hello";
  ws.onPayload = (bytes, start, end, now) => onPayload(m, bytes, start, end, now);
  ws.onClose = (code) => {
    if (m.ws !== ws) return;
    if (m.state === "in" || m.state === "leaving") stats.joined--;
    m.ws = null;
    m.state = "connecting";
    const key = String(code ?? "none");
    stats.closes[key] = (stats.closes[key] ?? 0) + 1;
  };
  ws.start();
  ws.sendText(
    JSON.stringify({ type: "hello", name: m.name, ...(m.token ? { resume: m.token } : {}) }),
  );
}

/** Runs `each(i)` for i in [0, count) at `perS` a second from now; resolves after the last. */
function paced(count: number, perS: number, each: (i: number) => void): Promise<void> {
  const startAt = wallNow();
  let done = 0;
  return new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(count, Math.floor(((wallNow() - startAt) * perS) / 1000) + 1);
      while (done < due) each(done++);
      if (done >= count) return resolve();
      setTimeout(tick, PACE_TICK_MS);
    };
    tick();
  });
}

async function open(req: Extract<CrowdRequest, { cmd: "open" }>): Promise<void> {
  const url = new URL(req.url);
  latest = req.names;
  await paced(req.names.length, req.perS, (i) => {
    const name = req.names[i];
    let m = members.get(name);
    if (!m) {
      m = {
        name,
        room: req.room,
        ws: null,
        token: "",
        state: "connecting",
        track: req.track,
        connectAt: NaN,
        joinedAt: NaN,
        wantSince: false,
        askedSince: false,
        lastSeq: NaN,
        ledger: null,
        leftAt: NaN,
      };
      members.set(name, m);
    }
    m.ws?.close();
    m.wantSince = req.since;
    m.joinedAt = NaN;
    void connect(m, url);
  });
}

function say(req: Extract<CrowdRequest, { cmd: "say" }>): Promise<void> {
  const m = members.get(req.name);
  if (!m?.ws) return Promise.reject(new Error(`Cannot say: ${req.name} is not connected`));
  const perS = 1000 / Math.max(1, req.intervalMs);
  return paced(req.count, perS, () => {
    m.ws?.sendText(JSON.stringify({
      type: "say",
      room: m.room,
      text: stampText(wallNow(), req.textBytes),
    }));
  });
}

function send(req: Extract<CrowdRequest, { cmd: "send" }>): void {
  measureFrom = req.measureFrom;
  measureTo = req.stopAt;
  const senders = req.senders.map((n) => members.get(n)).filter((m) => m !== undefined);
  if (senders.length === 0 || req.rate <= 0) return;
  let sent = 0;
  const tick = () => {
    const now = wallNow();
    const due = Math.floor(((Math.min(now, req.stopAt) - req.startAt) * req.rate) / 1000) - sent;
    if (due > 0) {
      const text = stampText(now, req.textBytes);
      for (let k = 0; k < due; k++) {
        const m = senders[(sent + k) % senders.length];
        if (m.state === "in") m.ws?.sendText(`{"type":"say","room":"${m.room}","text":"${text}"}`);
      }
      sent += due;
    }
    if (now < req.stopAt) setTimeout(tick, PACE_TICK_MS);
  };
  setTimeout(tick, Math.max(0, req.startAt - wallNow()));
}

function churn(req: Extract<CrowdRequest, { cmd: "churn" }>): void {
  const startAt = wallNow();
  const names = req.names.map((n) => members.get(n)).filter((m) => m !== undefined);
  let next = 0;
  let leaves = 0;
  const tick = () => {
    const now = wallNow();
    if (now < req.stopAt && names.length > 0) {
      const due = Math.floor(((now - startAt) * req.perS) / 1000) - leaves;
      for (let k = 0; k < due; k++, leaves++) {
        const m = names[next++ % names.length];
        if (m.state !== "in" || !m.ws) continue;
        m.state = "leaving";
        stats.left++;
        m.ws.sendText(JSON.stringify({ type: "leave", room: m.room }));
      }
    }
    let away = 0;
    for (const m of names) {
      if (m.state === "leaving") away++;
      if (m.state !== "away") continue;
      away++;
      if (now - m.leftAt < req.awayMs) continue;
      // Back with what it missed while away: exactly what a client does after a leave.
      m.wantSince = true;
      stats.rejoined++;
      sendJoin(m);
    }
    if (now < req.stopAt || away > 0) setTimeout(tick, PACE_TICK_MS * 20);
  };
  tick();
}

function verify(through: number) {
  const tally = emptyTally();
  for (const m of members.values()) {
    // A client not back in the room (a storm past its bound) is counted as not back, not checked.
    if (m.ledger === null || m.state !== "in") continue;
    addVerdict(tally, m.name, m.ledger.verdict(through));
  }
  return tally;
}

async function handle(req: CrowdRequest & { id: number }): Promise<CrowdReply> {
  const ok = (extra: Partial<CrowdReply> = {}): CrowdReply => ({
    id: req.id,
    ok: true,
    stats: { ...stats, closes: { ...stats.closes } },
    ...extra,
  });
  switch (req.cmd) {
    case "open":
      await open(req);
      return ok();
    case "stats":
      return ok();
    case "joins": {
      const of = latest.map((n) => members.get(n)!).filter((m) => Number.isFinite(m.joinedAt));
      return ok({
        joinedAt: of.map((m) => m.joinedAt),
        joinMs: of.map((m) => m.joinedAt - m.connectAt),
      });
    }
    case "say":
      await say(req);
      return ok();
    case "send":
      send(req);
      return ok();
    case "churn":
      churn(req);
      return ok();
    case "latency": {
      const reply = ok({ histogram: histogram.toSparse() });
      histogram.reset();
      return reply;
    }
    case "verify":
      return ok({ tally: verify(req.through) });
    case "exit":
      for (const m of members.values()) m.ws?.close();
      setTimeout(() => Deno.exit(0), 50);
      return ok();
  }
}

if (import.meta.main) {
  void serveLines<CrowdRequest & { id: number }>(
    "crowd",
    Number(Deno.args[0] ?? DEFAULT_MAX_LIFETIME_S),
    handle,
  );
}
