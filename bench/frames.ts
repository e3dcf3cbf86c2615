/**
 * The client side of RFC 6455 that both bench socket types share: the upgrade request, masked
 * outbound frames, and a reader that turns received bytes into frame payloads in place.
 *
 * The bench never decodes frames it does not need: a reader hands each text payload to the caller
 * as `bytes[start..end)` straight out of its buffer, so one socket read can yield many frames
 * without a copy or a string.
 */

/** Largest frame the bench accepts, in bytes; a bigger one is a protocol error. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** First read-buffer size per connection, in bytes; it doubles when a read fills it. */
export const INITIAL_READ_BUFFER_BYTES = 16 * 1024;
/** Largest the read buffer grows to for throughput alone (a single big frame may exceed it). */
export const MAX_READ_BUFFER_BYTES = 1024 * 1024;
/** How long the HTTP upgrade may take, in ms. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Frame opcodes the bench uses. */
export const Opcode = {
  continuation: 0x0,
  text: 0x1,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** Receives the payload of a text frame as `bytes[start..end)`; `now` is when the read returned. */
export type PayloadHandler = (bytes: Uint8Array, start: number, end: number, now: number) => void;

/** What the load generator needs of a client socket, whichever I/O it uses underneath. */
export interface BenchSocket {
  /** Called with each text (or continuation) frame's payload. */
  onPayload: PayloadHandler;
  /** Called once when the connection ends, with the close code the server sent (or null). */
  onClose: (code: number | null) => void;
  readonly closed: boolean;
  readonly closeCode: number | null;
  /** Bytes read since the upgrade. */
  readonly bytesRead: number;
  /** Starts delivering frames. */
  start(): void;
  /** Sends one text frame; never blocks; frames leave in order. */
  sendText(text: string): void;
  /** Drops the connection; safe to call twice. */
  close(): void;
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

const encoder = new TextEncoder();

/** The HTTP/1.1 upgrade request for `url` (ws://host:port/path). */
export function upgradeRequest(url: URL): Uint8Array {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  return encoder.encode(
    `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
}

/**
 * Index just past "\r\n\r\n" in `bytes[0..len)`, or -1 while the response head is incomplete.
 * Throws when the head is complete and is not "101 Switching Protocols".
 */
export function upgradeResponseEnd(bytes: Uint8Array, len: number): number {
  for (let i = 3; i < len; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) {
      const head = new TextDecoder().decode(bytes.subarray(0, Math.min(i, 200)));
      if (!head.startsWith("HTTP/1.1 101")) {
        throw new Error(`Cannot open WebSocket: server answered ${head.split("\r\n")[0]}`);
      }
      return i + 1;
    }
  }
  return -1;
}

/** A masked client frame carrying `payload`. */
export function clientFrame(opcode: number, payload: Uint8Array, mask: Uint8Array): Uint8Array {
  const n = payload.length;
  const header = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = new Uint8Array(header + 4 + n);
  frame[0] = 0x80 | opcode;
  if (n < 126) {
    frame[1] = 0x80 | n;
  } else if (n < 65536) {
    frame[1] = 0x80 | 126;
    frame[2] = n >> 8;
    frame[3] = n & 0xff;
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(n));
  }
  frame.set(mask, header);
  const body = header + 4;
  for (let i = 0; i < n; i++) frame[body + i] = payload[i] ^ mask[i & 3];
  return frame;
}

/** A masked text frame. */
export function textFrame(text: string, mask: Uint8Array): Uint8Array {
  return clientFrame(Opcode.text, encoder.encode(text), mask);
}

/**
 * Accumulates received bytes and parses complete frames in place. The owner reads into
 * `space()`, then calls `commit(n)`; payloads go to `onPayload`, pings to `onPing`, and a close
 * frame to `onCloseFrame` (after which nothing more is parsed).
 */
export class FrameReader {
  onPayload: PayloadHandler = () => {};
  onPing: (payload: Uint8Array) => void = () => {};
  onCloseFrame: (code: number) => void = () => {};
  #buf: Uint8Array;
  #len: number;
  #closed = false;

  constructor(leftover: Uint8Array = new Uint8Array(0)) {
    this.#buf = new Uint8Array(Math.max(INITIAL_READ_BUFFER_BYTES, leftover.length * 2));
    this.#buf.set(leftover);
    this.#len = leftover.length;
  }

  /** Unparsed bytes waiting for the rest of their frame. */
  get pending(): number {
    return this.#len;
  }

  /** Free space to read into; grows the buffer first when it is full. */
  space(): Uint8Array {
    if (this.#len === this.#buf.length) this.#grow(this.#buf.length * 2);
    return this.#buf.subarray(this.#len);
  }

  /** Accounts for `n` bytes just read into `space()` and parses every complete frame. */
  commit(n: number, now: number): void {
    this.#len += n;
    const filled = this.#len === this.#buf.length;
    this.parse(now);
    // A read that filled the buffer means more is waiting: read bigger chunks next time.
    if (filled && this.#buf.length < MAX_READ_BUFFER_BYTES) this.#grow(this.#buf.length * 2);
  }

  /** Parses every complete frame in the buffer (bytes that arrived with the upgrade, say). */
  parse(now: number): void {
    const buf = this.#buf;
    const len = this.#len;
    let pos = 0;
    while (len - pos >= 2 && !this.#closed) {
      const b1 = buf[pos + 1];
      const opcode = buf[pos] & 0x0f;
      let payloadLen = b1 & 0x7f;
      let header = 2;
      if (payloadLen === 126) {
        if (len - pos < 4) break;
        payloadLen = (buf[pos + 2] << 8) | buf[pos + 3];
        header = 4;
      } else if (payloadLen === 127) {
        if (len - pos < 10) break;
        const high = ((buf[pos + 2] << 24) | (buf[pos + 3] << 16) | (buf[pos + 4] << 8) |
          buf[pos + 5]) >>> 0;
        const low = ((buf[pos + 6] << 24) | (buf[pos + 7] << 16) | (buf[pos + 8] << 8) |
          buf[pos + 9]) >>> 0;
        payloadLen = high * 2 ** 32 + low;
        header = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) header += 4;
      if (payloadLen > MAX_FRAME_BYTES) throw new Error("Cannot read frame: over MAX_FRAME_BYTES");
      const start = pos + header;
      const end = start + payloadLen;
      if (end > len) {
        // Incomplete: make sure the whole frame will fit once the rest arrives.
        if (end - pos > buf.length) {
          buf.copyWithin(0, pos, len);
          this.#len = len - pos;
          this.#grow(2 ** Math.ceil(Math.log2(end - pos)));
          return;
        }
        break;
      }
      if (masked) {
        // Servers must not mask, but unmasking costs nothing to support.
        for (let i = start; i < end; i++) buf[i] ^= buf[start - 4 + ((i - start) & 3)];
      }
      if (opcode === Opcode.text || opcode === Opcode.continuation) {
        this.onPayload(buf, start, end, now);
      } else if (opcode === Opcode.ping) {
        this.onPing(buf.slice(start, end));
      } else if (opcode === Opcode.close) {
        this.#closed = true;
        this.onCloseFrame(payloadLen >= 2 ? (buf[start] << 8) | buf[start + 1] : 1005);
      }
      // Pongs and binary frames are not part of the bench's traffic: skipped.
      pos = end;
    }
    if (pos > 0) {
      buf.copyWithin(0, pos, len);
      this.#len = len - pos;
    }
  }

  #grow(size: number): void {
    if (size > MAX_FRAME_BYTES + 14) throw new Error("Cannot read frame: over MAX_FRAME_BYTES");
    const bigger = new Uint8Array(size);
    bigger.set(this.#buf.subarray(0, this.#len));
    this.#buf = bigger;
  }
}
