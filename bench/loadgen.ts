/**
 * A load-generator process: holds many bench clients, sends stamped texts at a fixed rate and
 * turns every delivery into a latency sample. The orchestrator (bench/main.ts) starts several of
 * these pinned to the load core and drives them over stdin/stdout (see control.ts).
 *
 * Usage: deno run -A bench/loadgen.ts [max-lifetime-seconds] [epoll|deno]
 */

import {
  type ClientSpec,
  type Counters,
  emptyCounters,
  type Reply,
  type Request,
} from "./control.ts";
import { Histogram } from "./histogram.ts";
import { scanStamps, stampText } from "./stamp.ts";
import { EpollSocket } from "./epoll_client.ts";
import { type BenchSocket, wallNow } from "./frames.ts";
import { SeqCheck } from "./seq_check.ts";
import { countRefusals } from "./refusals.ts";
import { joinAs } from "./session.ts";
import { RawWebSocket } from "./ws_client.ts";
import { serveLines } from "./line_server.ts";

/** The process exits by itself after this long even if the orchestrator vanished, in seconds. */
const DEFAULT_MAX_LIFETIME_S = 30 * 60;

interface Client {
  spec: ClientSpec;
  ws: BenchSocket;
  /** Sends in the current run: only senders get refusals, so only their frames are searched. */
  role: { sending: boolean };
}

const clients = new Map<string, Client>();
const histogram = new Histogram();
// The same deliveries split at the server's `ts`: send → server, and server → receive.
const toServer = new Histogram();
const fromServer = new Histogram();
let counters = emptyCounters();
let failed = 0;
const closes: Record<string, number> = {};
let closedBytes = 0;

// The measured window of the current run; deliveries outside it are counted but not sampled.
let measureFrom = Infinity;
let stopAt = -Infinity;
let receivedAt = 0;
let sendTimer: ReturnType<typeof setTimeout> | undefined;

function resetHistograms(): void {
  histogram.reset();
  toServer.reset();
  fromServer.reset();
}

/** Which sockets this process uses: "epoll" (FFI, Linux) or "deno" (Deno.connect). */
const io = Deno.args[1] === "deno" ? "deno" : "epoll";
const openSocket: (url: URL) => Promise<BenchSocket> = io === "deno"
  ? RawWebSocket.connect
  : EpollSocket.connect;
const totalReads = () => io === "deno" ? RawWebSocket.reads : EpollSocket.reads;

// Reads at the last collect, so each run reports its own reads.
let readsAtCollect = 0;

// The frame being scanned and its client's seq check.
let reading: SeqCheck | undefined;
let readingBytes: Uint8Array = new Uint8Array(0);

/** Counts one delivery; `receivedAt` is set per read, since a whole read arrived at once. */
function visitStamp(sentAt: number, serverTs: number, seq: number, at: number): void {
  // Each client is in one room, so its lines must carry seqs 1 apart, each once. With several
  // instances a line may come from the client's own instance or through Redis from another.
  // A line the client already had is counted only as a repeat: deliveries, the delivery ratio
  // and latency count each message once per client.
  if (reading !== undefined && seq === seq) {
    const skippedBefore = reading.skipped;
    switch (reading.see(seq, readingBytes, at)) {
      case "skipped":
        counters.seqSkipped += reading.skipped - skippedBefore;
        break;
      case "late":
        counters.seqLate++;
        break;
      case "repeat-own":
        counters.seqRepeatedOwn++;
        counters.seqRepeated++;
        return;
      case "repeat":
        counters.seqRepeated++;
        return;
    }
  }
  counters.delivered++;
  if (sentAt >= measureFrom && sentAt < stopAt) {
    counters.deliveredOfWindow++;
    histogram.record(receivedAt - sentAt);
    if (serverTs === serverTs) {
      toServer.record(serverTs - sentAt);
      fromServer.record(receivedAt - serverTs);
    }
  }
  if (receivedAt >= measureFrom && receivedAt < stopAt) counters.deliveredDuringWindow++;
}

function onRunPayload(
  seq: SeqCheck,
  sending: boolean,
  bytes: Uint8Array,
  start: number,
  end: number,
  now: number,
): void {
  receivedAt = now;
  reading = seq;
  readingBytes = bytes;
  counters.frames++;
  scanStamps(bytes, start, end, visitStamp);
  reading = undefined;
  if (sending) counters.refused += countRefusals(bytes, start, end);
}

/** Connects one client, says hello, joins its room, then counts its deliveries. */
async function setUp(spec: ClientSpec, url: URL): Promise<void> {
  const seq = new SeqCheck(spec.name);
  const role = { sending: false };
  const ws = await joinAs(
    openSocket,
    spec.url === undefined ? url : new URL(spec.url),
    spec.name,
    spec.room,
    (bytes, start, end, now) => onRunPayload(seq, role.sending, bytes, start, end, now),
  );
  const client: Client = { spec, ws, role };
  clients.set(spec.name, client);
  ws.onClose = (code) => {
    closedBytes += ws.bytesRead;
    clients.delete(spec.name);
    const key = String(code ?? "none");
    closes[key] = (closes[key] ?? 0) + 1;
  };
  if (ws.closed) ws.onClose(ws.closeCode);
}

async function connectAll(url: URL, specs: ClientSpec[], concurrency: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < specs.length) {
      const spec = specs[next++];
      try {
        await setUp(spec, url);
      } catch (e) {
        failed++;
        if (failed <= 3) console.error(`loadgen: ${e instanceof Error ? e.message : e}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
}

function startRun(req: Extract<Request, { cmd: "run" }>): void {
  clearTimeout(sendTimer);
  // Each run counts from zero: setup traffic (join notices) is not part of any step.
  resetHistograms();
  counters = emptyCounters();
  readsAtCollect = totalReads();
  measureFrom = req.measureFrom;
  stopAt = req.stopAt;
  for (const c of clients.values()) c.role.sending = false;
  const senders = req.senders.map((name) => clients.get(name)).filter((c) => c !== undefined);
  for (const c of senders) c.role.sending = true;
  if (senders.length === 0 || req.rate <= 0) return;
  const prefixes = senders.map((c) => `{"type":"say","room":"${c.spec.room}","text":"`);
  let sent = 0;
  let turn = 0;
  const tick = () => {
    const now = wallNow();
    const due = Math.floor(((Math.min(now, req.stopAt) - req.startAt) * req.rate) / 1000) - sent;
    if (due > 0) {
      // One stamp per tick: every message of a tick leaves within the same millisecond.
      const text = stampText(now, req.textBytes);
      const measured = now >= req.measureFrom && now < req.stopAt;
      for (let k = 0; k < due; k++) {
        const i = turn++ % senders.length;
        const sender = senders[i];
        if (sender.ws.closed) continue;
        sender.ws.sendText(prefixes[i] + text + '"}');
        counters.sent++;
        if (measured) {
          counters.sentInWindow++;
          counters.expected += sender.spec.roomSize;
        }
      }
      sent += due;
    }
    if (now >= req.stopAt) return;
    // Sleep until the next message is due (timers fire at best every ~1 ms; a late tick sends
    // the backlog at once, so the average rate holds).
    const nextAt = req.startAt + ((sent + 1) * 1000) / req.rate;
    sendTimer = setTimeout(tick, Math.max(0, Math.min(nextAt, req.stopAt) - wallNow()));
  };
  sendTimer = setTimeout(tick, Math.max(0, req.startAt - wallNow()));
}

function snapshot(): Counters {
  let bytesRead = closedBytes;
  for (const c of clients.values()) bytesRead += c.ws.bytesRead;
  return {
    ...counters,
    ready: clients.size,
    failed,
    closes: { ...closes },
    reads: totalReads() - readsAtCollect,
    bytesRead,
  };
}

async function handle(req: Request): Promise<Reply> {
  switch (req.cmd) {
    case "connect":
      await connectAll(new URL(req.url), req.clients, req.concurrency);
      return { id: req.id, ok: true, counters: snapshot() };
    case "run":
      startRun(req);
      return { id: req.id, ok: true, counters: snapshot() };
    case "stats":
      return { id: req.id, ok: true, counters: snapshot() };
    case "collect": {
      const reply: Reply = {
        id: req.id,
        ok: true,
        counters: snapshot(),
        histogram: histogram.toSparse(),
        toServer: toServer.toSparse(),
        fromServer: fromServer.toSparse(),
      };
      resetHistograms();
      counters = emptyCounters();
      readsAtCollect = totalReads();
      return reply;
    }
    case "exit":
      for (const c of clients.values()) c.ws.close();
      setTimeout(() => Deno.exit(0), 50);
      return { id: req.id, ok: true, counters: snapshot() };
  }
}

if (import.meta.main) {
  void serveLines<Request>("loadgen", Number(Deno.args[0] ?? DEFAULT_MAX_LIFETIME_S), handle);
}
