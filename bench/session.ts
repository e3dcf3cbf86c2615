/**
 * The chat handshake the bench needs: connect, hello, join one room. Shared by the load
 * generators and the orchestrator's hand-made slow consumer.
 */

import type { BenchSocket, PayloadHandler } from "./frames.ts";

/** How long hello + join may take for one client, in ms. */
export const SESSION_SETUP_TIMEOUT_MS = 60_000;

/**
 * Opens a connection with `open` as `name`, joins `room` and resolves once "joined" arrived. Frames after
 * "joined" go to `afterJoin` from the very next one (the switch happens inside the read that
 * carried "joined"). The caller sets `onClose` to take over close handling.
 */
export async function joinAs<S extends BenchSocket>(
  open: (url: URL) => Promise<S>,
  url: URL,
  name: string,
  room: string,
  afterJoin: PayloadHandler,
): Promise<S> {
  const ws = await open(url);
  const decoder = new TextDecoder();
  let needle = "";
  let resolveWait = () => {};
  let rejectWait: (e: Error) => void = () => {};
  ws.onPayload = (bytes, start, end) => {
    if (needle && decoder.decode(bytes.subarray(start, end)).includes(needle)) {
      if (needle === '"joined"') ws.onPayload = afterJoin;
      needle = "";
      resolveWait();
    }
  };
  ws.onClose = (code) =>
    rejectWait(new Error(`Cannot join as ${name}: closed with ${code ?? "no close frame"}`));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expect = (text: string) =>
    new Promise<void>((resolve, reject) => {
      needle = text;
      resolveWait = resolve;
      rejectWait = reject;
    });
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`Cannot join as ${name}: no answer within ${SESSION_SETUP_TIMEOUT_MS} ms`),
          ),
        SESSION_SETUP_TIMEOUT_MS,
      );
    });
    ws.start();
    const welcome = expect('"welcome"');
    ws.sendText(JSON.stringify({ type: "hello", name }));
    await Promise.race([welcome, deadline]);
    const joined = expect('"joined"');
    ws.sendText(JSON.stringify({ type: "join", room }));
    await Promise.race([joined, deadline]);
    return ws;
  } catch (e) {
    ws.close();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
