/**
 * The load generator of the overload tests, run as its own process: SENDERS members join ROOM and
 * together say COUNT messages of the given text as fast as their sockets take them, without
 * waiting for echoes. A refused `say` (`rate_limited`, with `retryAfterMs`) is sent again after
 * the hint, as a working client does. Every sender also reads the room like any member. At the end
 * it prints one JSON line: messages acknowledged, refusals, close codes seen, time taken.
 *
 * Usage: deno run --allow-net tests/overload_flood.ts WS_URL ROOM SENDERS COUNT TEXT_KIND
 * TEXT_KIND is `64b`, `4kb` or `max` (4000 characters of three UTF-8 bytes each).
 */
export const TEXTS: Record<string, string> = {
  "64b": "f".repeat(64),
  "4kb": "k".repeat(4000),
  max: "€".repeat(4000),
};
/** A sender stops writing while this much of its own is unsent, so its memory stays bounded. */
const MAX_BUFFERED_BYTES = 1 << 20;

if (import.meta.main) {
  const [url, room, sendersText, countText, kind] = Deno.args;
  const senders = Number(sendersText), count = Number(countText), text = TEXTS[kind];
  if (!url || !room || !(senders > 0) || !(count > 0) || text === undefined) {
    console.error("Cannot flood: usage overload_flood.ts WS_URL ROOM SENDERS COUNT 64b|4kb|max");
    Deno.exit(2);
  }
  const tally = { acked: 0, refused: 0, closes: {} as Record<string, number>, ms: 0 };
  const start = Date.now();
  const each = Math.ceil(count / senders);
  await Promise.all(
    Array.from({ length: senders }, (_, i) => flood(url, room, `s${i}`, each, text, tally)),
  );
  tally.ms = Date.now() - start;
  console.log(JSON.stringify(tally));
}

async function flood(
  url: string,
  room: string,
  name: string,
  count: number,
  text: string,
  tally: { acked: number; refused: number; closes: Record<string, number> },
): Promise<void> {
  const socket = new WebSocket(url);
  let joined: () => void;
  const ready = new Promise<void>((r) => joined = r);
  let finished: () => void;
  const done = new Promise<void>((r) => finished = r);
  const acked = new Set<string>();
  const queue: string[] = Array.from({ length: count }, (_, i) => `${name}-${i}`);
  const marker = `"from":"${name}"`;
  socket.onopen = () => socket.send(JSON.stringify({ type: "hello", name }));
  socket.onmessage = (e) => {
    for (const line of String(e.data).split("\n")) {
      // Only this sender's own lines and errors need parsing: the others are the room's traffic.
      if (!line.includes(marker) && !line.startsWith('{"type":"e') && !line.includes('"welcome"')) {
        continue;
      }
      const m = JSON.parse(line);
      if (m.type === "welcome") socket.send(JSON.stringify({ type: "join", room }));
      else if (m.type === "joined") joined();
      else if (m.type === "message" && m.from === name && !acked.has(m.cid)) {
        acked.add(m.cid);
        tally.acked++;
        if (acked.size === count) finished();
      } else if (m.type === "error" && m.code === "rate_limited" && m.cid !== undefined) {
        tally.refused++;
        setTimeout(() => {
          queue.push(m.cid);
          pump();
        }, m.retryAfterMs ?? 100);
      } else if (m.type === "error") throw new Error(`${name}: ${line}`);
    }
  };
  socket.onclose = (e) => {
    tally.closes[e.code] = (tally.closes[e.code] ?? 0) + 1;
    finished();
    joined();
  };
  let pumping = false;
  const pump = () => {
    if (pumping || socket.readyState !== WebSocket.OPEN) return;
    pumping = true;
    while (queue.length > 0 && socket.bufferedAmount < MAX_BUFFERED_BYTES) {
      socket.send(JSON.stringify({ type: "say", room, text, cid: queue.shift() }));
    }
    pumping = false;
    if (queue.length > 0) setTimeout(pump, 0);
  };
  await ready;
  pump();
  await done;
  socket.close();
}
