/**
 * The room's other members in the overload tests, run as their own process so that neither the
 * server's event loop nor the load generator's hides how a real client is served: two fast readers,
 * one member that never reads, and one that reads at about 100 KB/s. It prints `ready` once all
 * have joined ROOM. When the fast readers have EXPECTED messages (or WAIT_MS passed), it waits
 * STALL_TIMEOUT_MS and a second more, so the server must judge the non-reader with no traffic, then
 * lets the other two read everything left and prints one JSON line describing what each got.
 *
 * Usage: deno run --allow-net tests/overload_members.ts PORT ROOM EXPECTED WAIT_MS [EXTRA_NEVER]
 */
import { STALL_TIMEOUT_MS } from "../ops/limits.ts";
import { RawSocket } from "./server_fixture.ts";

/** What the reader at about 100 KB/s reads per second, in bytes. */
export const SLOW_READER_BYTES_PER_SECOND = 100_000;

/** One member's account of the test. */
export interface MemberReport {
  /** Room messages received. */
  messages: number;
  /** Every seq was the previous one plus one. */
  inOrder: boolean;
  /** The close code seen, or null while still open. */
  closeCode: number | null;
  closeReason: string;
}

const [portText, room, expectedText, waitText, extraText] = Deno.args;
const port = Number(portText), expected = Number(expectedText), waitMs = Number(waitText);
/** More members that never read, beside the first: memory must stay bounded however many. */
const extraNever = Number(extraText ?? 0);
const decoder = new TextDecoder();

function tracker(): MemberReport & { add(line: string): void } {
  let last = 0;
  return {
    messages: 0,
    inOrder: true,
    closeCode: null,
    closeReason: "",
    add(line: string) {
      if (!line.startsWith('{"type":"message"')) return;
      const m = JSON.parse(line);
      if (m.room !== room) return;
      if (last !== 0 && m.seq !== last + 1) this.inOrder = false;
      last = m.seq;
      this.messages++;
    },
  };
}

function fastReader(name: string) {
  const report = tracker();
  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  let joinedResolve: () => void;
  const joined = new Promise<void>((r) => joinedResolve = r);
  let doneResolve: () => void;
  const done = new Promise<void>((r) => doneResolve = r);
  socket.onopen = () => socket.send(JSON.stringify({ type: "hello", name }));
  socket.onmessage = (e) => {
    for (const line of String(e.data).split("\n")) {
      if (line.startsWith('{"type":"welcome"')) {
        socket.send(JSON.stringify({ type: "join", room }));
      } else if (line.startsWith('{"type":"joined"')) joinedResolve();
      else report.add(line);
    }
    if (report.messages >= expected) doneResolve();
  };
  socket.onclose = (e) => {
    report.closeCode = e.code;
    report.closeReason = e.reason;
    joinedResolve();
    doneResolve();
  };
  return { report, joined, done, close: () => socket.close() };
}

/** A member on a raw socket: joins, then reads only when `read` is called. */
async function rawMember(name: string) {
  const socket = await RawSocket.connect(port);
  await socket.sendText(JSON.stringify({ type: "hello", name }));
  await socket.sendText(JSON.stringify({ type: "join", room }));
  const report = tracker();
  /**
   * Reads frames until the close frame, end of stream, every expected message, `stop()`, or (with
   * `untilJoined`) the `joined` reply; with `pace`, at about SLOW_READER_BYTES_PER_SECOND.
   */
  const read = async (pace: boolean, stop: () => boolean, untilJoined = false) => {
    while (!stop() && report.closeCode === null && report.messages < expected) {
      const frame = await socket.readFrame();
      if (frame === null) break;
      let joined = false;
      if (frame.opcode === 0x1) {
        for (const line of decoder.decode(frame.payload).split("\n")) {
          if (line.startsWith('{"type":"joined"')) joined = true;
          report.add(line);
        }
      } else if (frame.opcode === 0x9) await socket.sendPong(frame.payload);
      else if (frame.opcode === 0x8) {
        report.closeCode = frame.payload.length >= 2
          ? new DataView(frame.payload.buffer).getUint16(0)
          : null;
        report.closeReason = decoder.decode(frame.payload.slice(2));
      }
      if (untilJoined && joined) return;
      if (pace) {
        const ms = (frame.payload.length / SLOW_READER_BYTES_PER_SECOND) * 1000;
        await new Promise((r) => setTimeout(r, ms));
      }
    }
  };
  return { socket, report, read };
}

const never = () => false;
const fast = [fastReader("fast1"), fastReader("fast2")];
await Promise.all(fast.map((f) => f.joined));
const idle = await rawMember("never");
const slow = await rawMember("slow");
const others = [];
for (let i = 2; i < 2 + extraNever; i++) others.push(await rawMember(`never${i}`));
// The raw members read up to their `joined` reply, so the server has them in the room.
for (const m of [idle, slow, ...others]) await m.read(false, never, true);
console.log("ready");

let fastDone = false;
const allFast = Promise.all(fast.map((f) => f.done));
const slowReading = slow.read(true, () => fastDone).catch(() => {});
await Promise.race([allFast, new Promise((r) => setTimeout(r, waitMs))]);
await new Promise((r) => setTimeout(r, STALL_TIMEOUT_MS + 1000));
fastDone = true;
await slowReading;
// Now the other two read everything left at full speed: the rest of the lines, or the 4008.
const drainBound = new Promise((r) => setTimeout(r, 20_000));
await Promise.race([
  Promise.all([idle, slow, ...others].map((m) => m.read(false, never).catch(() => {}))),
  drainBound,
]);
for (const f of fast) f.close();
for (const m of [idle, slow, ...others]) m.socket.close();
console.log(JSON.stringify({
  fast: fast.map((f) => ({ ...f.report, add: undefined })),
  never: { ...idle.report, add: undefined },
  slow: { ...slow.report, add: undefined },
  others: others.map((m) => ({ ...m.report, add: undefined })),
}));
