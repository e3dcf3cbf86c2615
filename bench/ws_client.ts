/**
 * A minimal WebSocket client over `Deno.connect`: the portable bench socket, and the slow
 * consumer (it can stop reading on purpose with `pause()`).
 *
 * It speaks the real protocol (HTTP upgrade, masked frames, ping → pong, close codes) but hands
 * payload bytes straight out of its read buffer (see frames.ts), where the built-in `WebSocket`
 * would dispatch one event and decode one string per frame.
 */

import {
  type BenchSocket,
  clientFrame,
  FrameReader,
  HANDSHAKE_TIMEOUT_MS,
  Opcode,
  type PayloadHandler,
  textFrame,
  upgradeRequest,
  upgradeResponseEnd,
  wallNow,
} from "./frames.ts";

/** One client connection speaking WebSocket over a Deno TCP connection. */
export class RawWebSocket implements BenchSocket {
  /** Reads that returned data, over every connection of this process. */
  static reads = 0;
  onClose: (code: number | null) => void = () => {};

  #conn: Deno.TcpConn;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: FrameReader;
  #paused = false;
  #reading = false;
  #closed = false;
  #closeCode: number | null = null;
  #bytesRead = 0;
  #mask = crypto.getRandomValues(new Uint8Array(4));

  private constructor(conn: Deno.TcpConn, leftover: Uint8Array) {
    this.#conn = conn;
    this.#writer = conn.writable.getWriter();
    this.#reader = new FrameReader(leftover);
    this.#reader.onPing = (payload) => this.#send(clientFrame(Opcode.pong, payload, this.#mask));
    this.#reader.onCloseFrame = (code) => this.#finish(code);
  }

  /**
   * Opens `ws://host:port/path` and completes the upgrade within `timeoutMs`; call `start()` to
   * read frames.
   */
  static async connect(url: URL, timeoutMs = HANDSHAKE_TIMEOUT_MS): Promise<RawWebSocket> {
    const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port || 80) });
    // Each say is one small write; Nagle's algorithm would hold it for the previous ACK.
    conn.setNoDelay(true);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      conn.close();
    }, timeoutMs);
    try {
      const request = upgradeRequest(url);
      for (let off = 0; off < request.length;) off += await conn.write(request.subarray(off));
      let head = new Uint8Array(4096);
      let len = 0;
      while (true) {
        if (len === head.length) {
          const bigger = new Uint8Array(head.length * 2);
          bigger.set(head);
          head = bigger;
        }
        const n = await conn.read(head.subarray(len));
        if (n === null) throw new Error("Cannot open WebSocket: connection closed during upgrade");
        len += n;
        const end = upgradeResponseEnd(head, len);
        if (end < 0) continue;
        clearTimeout(timer);
        return new RawWebSocket(conn, head.slice(end, len));
      }
    } catch (e) {
      clearTimeout(timer);
      if (timedOut) {
        throw new Error(`Cannot open WebSocket: no upgrade within ${timeoutMs} ms`);
      }
      try {
        conn.close();
      } catch { /* already closed */ }
      throw e;
    }
  }

  get onPayload(): PayloadHandler {
    return this.#reader.onPayload;
  }

  set onPayload(handler: PayloadHandler) {
    this.#reader.onPayload = handler;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get closeCode(): number | null {
    return this.#closeCode;
  }

  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** Starts (or resumes) the read loop. */
  start(): void {
    this.#paused = false;
    if (!this.#reading && !this.#closed) this.#readLoop();
  }

  /**
   * Most bytes one read takes (default: the whole free buffer, which grows as reads fill it), so
   * a paced reader reads in small steps rather than a megabyte at once.
   */
  maxReadBytes = Infinity;

  /** Stops reading: the server's writes back up into kernel buffers and then its own queue. */
  pause(): void {
    this.#paused = true;
  }

  sendText(text: string): void {
    if (!this.#closed) this.#send(textFrame(text, this.#mask));
  }

  close(): void {
    this.#finish(this.#closeCode);
  }

  #send(frame: Uint8Array): void {
    this.#writer.write(frame).catch(() => this.#finish(this.#closeCode));
  }

  async #readLoop(): Promise<void> {
    this.#reading = true;
    try {
      // Frames that arrived with the upgrade response.
      if (this.#reader.pending > 0) this.#reader.parse(wallNow());
      while (!this.#paused && !this.#closed) {
        const space = this.#reader.space();
        const n = await this.#conn.read(
          space.length > this.maxReadBytes ? space.subarray(0, this.maxReadBytes) : space,
        );
        if (n === null) break;
        this.#bytesRead += n;
        RawWebSocket.reads++;
        this.#reader.commit(n, wallNow());
      }
    } catch {
      // Reset or closed under us: reported through onClose below.
    } finally {
      this.#reading = false;
    }
    if (!this.#paused) this.#finish(this.#closeCode);
  }

  #finish(code: number | null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeCode = code;
    this.#writer.releaseLock();
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.onClose(code);
  }
}
