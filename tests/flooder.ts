/**
 * A hostile client for tests, run as its own process so its loop does not share the server's or
 * the measuring test's event loop: for `durationMs` it connects, says hello, and sends malformed
 * frames as fast as the socket takes them; when the server closes it, it connects again. At the end
 * it prints one JSON line: connections opened, frames sent, replies received, connections the
 * server ended, close codes seen (a server that closes while frames are still arriving resets the
 * TCP connection, so this side often sees code 0 or 1006, not the close frame).
 *
 * Usage: deno run --allow-net tests/flooder.ts ws://127.0.0.1:PORT/ws DURATION_MS
 */
const [url, durationText] = Deno.args;
const durationMs = Number(durationText);
if (!url || !(durationMs > 0)) {
  console.error("Cannot flood: usage flooder.ts WS_URL DURATION_MS");
  Deno.exit(2);
}
/** The client side stops writing while this much is still unsent, so its own memory stays bounded. */
const MAX_BUFFERED_BYTES = 1 << 20;
const FRAMES_PER_TURN = 500;
const deadline = Date.now() + durationMs;
const tally = {
  connections: 0,
  sent: 0,
  replies: 0,
  /** Connections the server ended (before the deadline made this client end them). */
  closedByServer: 0,
  closes: {} as Record<string, number>,
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

while (Date.now() < deadline) {
  const socket = new WebSocket(url);
  const opened = await new Promise<boolean>((resolve) => {
    socket.onopen = () => resolve(true);
    socket.onerror = () => resolve(false);
  });
  if (!opened) {
    await sleep(50); // refused (429 or 503): try again shortly
    continue;
  }
  tally.connections++;
  let closed = false;
  let leaving = false;
  const done = new Promise<void>((resolve) => {
    socket.onclose = (e) => {
      closed = true;
      if (!leaving) tally.closedByServer++;
      tally.closes[e.code] = (tally.closes[e.code] ?? 0) + 1;
      resolve();
    };
  });
  const welcomed = new Promise<void>((resolve) => {
    socket.onmessage = () => {
      socket.onmessage = () => tally.replies++;
      resolve();
    };
  });
  socket.send(JSON.stringify({ type: "hello", name: `mallory${Deno.pid}-${tally.connections}` }));
  await Promise.race([welcomed, done]);
  while (!closed && Date.now() < deadline) {
    if (socket.bufferedAmount < MAX_BUFFERED_BYTES) {
      for (let i = 0; i < FRAMES_PER_TURN && socket.readyState === WebSocket.OPEN; i++) {
        socket.send("{}");
        tally.sent++;
      }
    }
    await sleep(0);
  }
  if (!closed) {
    leaving = true;
    socket.close();
  }
  await done;
}
console.log(JSON.stringify(tally));
