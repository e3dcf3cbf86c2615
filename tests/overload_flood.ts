/**
 * The load generator of the overload tests, run as its own process: SENDERS members join ROOM and
 * together say COUNT messages of the given text as fast as their TCP connections take them
 * (frames written in large batches over raw sockets, never waiting for echoes). A refused `say`
 * (`rate_limited`, with `retryAfterMs`) is queued again and the sender stops for the hint's time,
 * as a working client does. Every sender also reads the room like any member. At the end it
 * prints one JSON line: messages acknowledged, refusals, close codes seen, time taken.
 *
 * Usage: deno run --allow-net tests/overload_flood.ts PORT ROOM SENDERS COUNT TEXT_KIND
 * TEXT_KIND is `64b`, `4kb` or `max` (4000 characters of three UTF-8 bytes each).
 */
import { RawSocket } from "./server_fixture.ts";

export const TEXTS: Record<string, string> = {
  "64b": "f".repeat(64),
  "4kb": "k".repeat(4000),
  max: "€".repeat(4000),
};
/** Frames per write: large writes are how a fast client fills its socket. */
const FRAMES_PER_WRITE = 256;

interface Tally {
  acked: number;
  refused: number;
  closes: Record<string, number>;
  ms: number;
}

if (import.meta.main) {
  const [portText, room, sendersText, countText, kind] = Deno.args;
  const port = Number(portText), senders = Number(sendersText), count = Number(countText);
  const text = TEXTS[kind];
  if (!(port > 0) || !room || !(senders > 0) || !(count > 0) || text === undefined) {
    console.error("Cannot flood: usage overload_flood.ts PORT ROOM SENDERS COUNT 64b|4kb|max");
    Deno.exit(2);
  }
  const tally: Tally = { acked: 0, refused: 0, closes: {}, ms: 0 };
  const each = Math.ceil(count / senders);
  const joined = await Promise.all(
    Array.from({ length: senders }, (_, i) => sender(port, room, `s${i}`)),
  );
  const start = Date.now();
  await Promise.all(joined.map((s) => s.flood(each, text, tally)));
  tally.ms = Date.now() - start;
  console.log(JSON.stringify(tally));
  Deno.exit(0);
}

/** Connects, says hello, joins; `flood` then sends and reads until every message is acknowledged. */
async function sender(port: number, room: string, name: string) {
  const socket = await RawSocket.connect(port);
  await socket.sendText(JSON.stringify({ type: "hello", name }));
  const decoder = new TextDecoder();
  /**
   * Reads frames, handing each text line to `onLine` (with `needles`, only lines holding one of
   * them: the room's other traffic is skipped unsplit), until it returns true or the stream ends.
   */
  const readUntil = async (
    onLine: (line: string) => boolean,
    onClose: (code: number) => void,
    needles?: string[],
  ) => {
    for (;;) {
      const frame = await socket.readFrame();
      if (frame === null) return onClose(0);
      if (frame.opcode === 0x9) await socket.sendPong(frame.payload);
      else if (frame.opcode === 0x8) {
        return onClose(
          frame.payload.length >= 2 ? new DataView(frame.payload.buffer).getUint16(0) : 1005,
        );
      } else if (frame.opcode === 0x1) {
        const text = decoder.decode(frame.payload);
        const lines = needles === undefined ? text.split("\n") : linesWith(text, needles);
        for (const line of lines) if (onLine(line)) return;
      }
    }
  };
  const fail = (code: number) => {
    throw new Error(`${name}: closed with ${code} before joining`);
  };
  await readUntil((line) => line.startsWith('{"type":"welcome"'), fail);
  await socket.sendText(JSON.stringify({ type: "join", room }));
  await readUntil((line) => line.startsWith('{"type":"joined"'), fail);

  const flood = async (count: number, text: string, tally: Tally) => {
    const queue: string[] = Array.from({ length: count }, (_, i) => `${name}-${i}`);
    const sentAt = new Map<string, number>();
    const marker = `"from":"${name}"`;
    let acked = 0, pausedUntil = 0, pauseStarted = 0, closed = false;
    const reading = readUntil((line) => {
      // Only this sender's own lines and errors need parsing: the rest is the room's traffic.
      if (!line.includes(marker) && !line.startsWith('{"type":"error"')) return false;
      const m = JSON.parse(line);
      if (m.type === "message") {
        if (sentAt.delete(m.cid)) tally.acked++, acked++;
      } else if (m.type === "error" && m.code === "rate_limited" && m.cid !== undefined) {
        tally.refused++;
        queue.push(m.cid);
        // One pause per burst of refusals: those for frames sent before it began do not extend it.
        if ((sentAt.get(m.cid) ?? 0) >= pauseStarted) {
          pauseStarted = Date.now();
          pausedUntil = pauseStarted + (m.retryAfterMs ?? 100);
        }
      } else if (m.type === "error") throw new Error(`${name}: ${line}`);
      return acked === count;
    }, (code) => {
      closed = true;
      tally.closes[code] = (tally.closes[code] ?? 0) + 1;
    }, [marker, '{"type":"error"']);
    const writing = (async () => {
      while (acked < count && !closed) {
        const wait = pausedUntil - Date.now();
        if (wait > 0 || queue.length === 0) {
          await new Promise((r) => setTimeout(r, Math.max(wait, 1)));
          continue;
        }
        const cids = queue.splice(0, FRAMES_PER_WRITE);
        const now = Date.now();
        for (const cid of cids) sentAt.set(cid, now);
        await socket.sendTexts(cids.map((cid) => JSON.stringify({ type: "say", room, text, cid })));
      }
    })();
    await reading;
    closed = true;
    await writing.catch(() => {});
    socket.close();
  };
  return { flood };
}

/** The lines of `text` (joined by "\n") that hold one of `needles`, in order, each once. */
function linesWith(text: string, needles: string[]): string[] {
  const starts = new Set<number>();
  for (const needle of needles) {
    for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) {
      starts.add(text.lastIndexOf("\n", i) + 1);
    }
  }
  return [...starts].sort((a, b) => a - b).map((start) => {
    const end = text.indexOf("\n", start);
    return text.slice(start, end < 0 ? text.length : end);
  });
}
