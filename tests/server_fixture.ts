/**
 * The real server in this process for socket tests: `startChat`, the same wiring main.ts runs,
 * behind `Deno.serve({ port: 0 })`, plus the raw-TCP tools the built-in
 * WebSocket cannot play (a hand-made upgrade request, a client that stops reading).
 *
 * Start one with `await using server = await startServer({...})`: disposal closes every client
 * the fixture opened, shuts the hub and the listener down, so Deno's leak checks stay on.
 */
import type { Authenticator } from "../auth/auth.ts";
import { type Config, parseConfig } from "../ops/config.ts";
import { Hub } from "../hub.ts";
import type { ChatMessage } from "../protocol/protocol.ts";
import { startChat } from "../http/chat_server.ts";
import { createLogger } from "../ops/log.ts";
import {
  MemoryStore,
  type NewMessage,
  type ReadRange,
  type RoomBounds,
  type Store,
} from "../store/store.ts";
import { type Msg, TestClient } from "./helpers.ts";
import { PasswordHasher } from "../auth/password.ts";
import type { AccountStore } from "../store/accounts.ts";

/** Options for {@linkcode startServer}: any config field, plus what the wiring takes. */
export interface FixtureOptions extends Partial<Config> {
  /** @default a fresh MemoryStore */
  store?: Store;
  /** The hub's clock (reservations, typing interval, resend window). @default Date.now */
  hubNow?: () => number;
  /** The handler's clock, which the clients' rate limits use. @default Date.now */
  clientNow?: () => number;
  /** Checks each hello's credentials, as main.ts's `createAuthenticator`. @default none: open */
  auth?: Authenticator;
  /** Hashes account passwords. @default real scrypt at FIXTURE_SCRYPT_PARAMS */
  hasher?: PasswordHasher;
  /** Accounts. @default in memory */
  accounts?: AccountStore;
}

/**
 * The fixture's scrypt cost: the real function, at 1 MiB instead of OWASP's 128 MiB, so a test
 * signs in in a millisecond; auth/password_test.ts and the process tests run the real parameters.
 */
export const FIXTURE_SCRYPT_PARAMS = { logN: 10, r: 8, p: 1 };

/** The flags' defaults, as `main.ts` would see them with no arguments. */
export function defaultConfig(args: string[] = []): Config {
  const parsed = parseConfig(args);
  if (parsed.kind !== "run") throw new Error(`Cannot parse test flags: ${JSON.stringify(parsed)}`);
  return parsed.config;
}

/** A running in-process server. */
export interface InProcessServer extends AsyncDisposable {
  hub: Hub;
  config: Config;
  store: Store;
  port: number;
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  origin: string;
  /** `ws://127.0.0.1:PORT/ws`. */
  wsUrl: string;
  /** Opens a client, says hello as `name` and waits for the welcome; closed on disposal. */
  connect(name: string, extra?: Msg): Promise<TestClient>;
  /** Opens a client that has said nothing yet; closed on disposal. */
  open(options?: { headers?: Record<string, string> }): Promise<TestClient>;
  /** Opens a raw WebSocket over TCP; closed on disposal. */
  raw(): Promise<RawSocket>;
  /** Shuts the hub and listener down (every socket gets 1001); safe to call twice. */
  shutdown(): Promise<void>;
}

/**
 * Starts the server on 127.0.0.1, on `options.port` when given, else on a free port: main.ts's
 * own wiring (http/chat_server.ts), quiet, with the per-address limits off (every test client
 * comes from 127.0.0.1) unless the options set them.
 */
export async function startServer(options: FixtureOptions = {}): Promise<InProcessServer> {
  const { store: givenStore, hubNow, clientNow, auth, hasher, accounts, ...overrides } = options;
  const config: Config = { ...defaultConfig(), host: "127.0.0.1", port: 0, ...overrides };
  const store = givenStore ?? new MemoryStore({ retention: config.retention });
  const perAddress = ["maxConnectionsPerIp", "maxPendingPerIp", "handshakeRate"] as const;
  const chat = await startChat({
    config,
    store,
    logger: createLogger({ level: "error", write: () => {} }),
    admission: perAddress.some((k) => k in overrides),
    ...(auth ? { auth } : {}),
    ...(hubNow ? { hubNow } : {}),
    ...(clientNow ? { clientNow } : {}),
    ...(accounts ? { accounts } : {}),
    hasher: hasher ?? new PasswordHasher({ params: FIXTURE_SCRYPT_PARAMS }),
  });
  const { hub, port } = chat;
  const origin = `http://127.0.0.1:${port}`;
  const wsUrl = `ws://127.0.0.1:${port}/ws`;
  const clients: TestClient[] = [];
  const raws: RawSocket[] = [];
  const shutdown = () => chat.shutdown();

  const open = async (opts?: { headers?: Record<string, string> }) => {
    const c = new TestClient(wsUrl, opts);
    clients.push(c);
    await c.opened;
    return c;
  };

  return {
    hub,
    config,
    store,
    port,
    origin,
    wsUrl,
    async connect(name, extra = {}) {
      const c = await open();
      c.send({ type: "hello", name, ...extra });
      await c.waitFor((m) => m.type === "welcome");
      return c;
    },
    open,
    async raw() {
      const r = await RawSocket.connect(port);
      raws.push(r);
      return r;
    },
    shutdown,
    async [Symbol.asyncDispose]() {
      for (const r of raws) r.close();
      await Promise.all(clients.map((c) => c.close()));
      await shutdown();
    },
  };
}

/** A MemoryStore whose appends commit only after `delayMs`, like a store on a slow disk. */
export class SlowStore implements Store {
  #inner = new MemoryStore();
  #delayMs: number;
  constructor(delayMs: number) {
    this.#delayMs = delayMs;
  }
  append(batch: readonly NewMessage[]): Promise<ChatMessage[]> {
    return new Promise((resolve, reject) =>
      setTimeout(() => {
        try {
          resolve(this.#inner.append(batch));
        } catch (e) {
          reject(e);
        }
      }, this.#delayMs)
    );
  }
  read(room: string, range: ReadRange): ChatMessage[] {
    return this.#inner.read(room, range);
  }
  bounds(room: string): RoomBounds {
    return this.#inner.bounds(room);
  }
  recentWithCid(sinceTs: number): ChatMessage[] {
    return this.#inner.recentWithCid(sinceTs);
  }
  prune(now: number): number {
    return this.#inner.prune(now);
  }
  close(): void {
    this.#inner.close();
  }
}

// ---- raw HTTP and WebSocket over TCP ----

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An HTTP response head (and body, when it has a Content-Length) read off a raw socket. */
export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** Sends `request` (a whole HTTP/1.1 request head) and reads one response; closes the socket. */
export async function rawHttp(port: number, request: string): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(conn, encoder.encode(request));
    const reader = new ByteReader(conn);
    const head = await reader.readHead();
    const length = Number(head.headers.get("content-length") ?? 0);
    const body = decoder.decode(await reader.readExactly(length));
    return { status: head.status, headers: head.headers, body };
  } finally {
    conn.close();
  }
}

/** An upgrade request for /ws with the given extra header lines ("Name: value"). */
export function upgradeRequest(port: number, extra: string[] = [], path = "/ws"): string {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  return [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${key}`,
    "Sec-WebSocket-Version: 13",
    ...extra,
    "",
    "",
  ].join("\r\n");
}

/** One frame a server sent. */
export interface RawFrame {
  opcode: number;
  payload: Uint8Array;
}

/**
 * A WebSocket client over a raw TCP socket that reads only when asked: the way to be a consumer
 * that stalls. Frames it sends are masked, as RFC 6455 requires of clients.
 */
export class RawSocket {
  readonly conn: Deno.TcpConn;
  #reader: ByteReader;
  #closed = false;

  private constructor(conn: Deno.TcpConn, reader: ByteReader) {
    this.conn = conn;
    this.#reader = reader;
  }

  /** Opens /ws and completes the upgrade; reads nothing after the 101 response. */
  static async connect(port: number): Promise<RawSocket> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const reader = new ByteReader(conn);
    try {
      await writeAll(conn, encoder.encode(upgradeRequest(port)));
      const head = await reader.readHead();
      if (head.status !== 101) throw new Error(`Cannot upgrade: HTTP ${head.status}`);
    } catch (e) {
      conn.close();
      throw e;
    }
    return new RawSocket(conn, reader);
  }

  /** Sends one masked text frame. */
  sendText(text: string): Promise<void> {
    return this.sendFrame(0x1, encoder.encode(text));
  }

  /** Answers a ping, as a browser does (an idle timeout closes a peer that never does). */
  sendPong(payload: Uint8Array): Promise<void> {
    return this.sendFrame(0xa, payload);
  }

  /** Sends one masked frame with `opcode` and the FIN bit. */
  async sendFrame(opcode: number, payload: Uint8Array): Promise<void> {
    await writeAll(this.conn, maskedFrame(opcode, payload));
  }

  /** Sends many text frames in one write: how a fast client fills its socket. */
  async sendTexts(texts: string[]): Promise<void> {
    const frames = texts.map((t) => maskedFrame(0x1, encoder.encode(t)));
    const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of frames) {
      all.set(f, at);
      at += f.length;
    }
    await writeAll(this.conn, all);
  }

  /** Reads the next frame; null at end of stream. */
  async readFrame(): Promise<RawFrame | null> {
    const first = await this.#reader.readExactly(2, true);
    if (first === null) return null;
    let length = first[1] & 0x7f;
    if (length === 126) {
      length = new DataView((await this.#reader.readExactly(2)).buffer).getUint16(0);
    } else if (length === 127) {
      length = Number(new DataView((await this.#reader.readExactly(8)).buffer).getBigUint64(0));
    }
    return { opcode: first[0] & 0x0f, payload: await this.#reader.readExactly(length) };
  }

  /**
   * Reads frames until the server's close frame or end of stream: the text frames' messages and
   * the close code (null when the stream ended without one).
   */
  async drain(): Promise<{ messages: Msg[]; closeCode: number | null; closeReason: string }> {
    const messages: Msg[] = [];
    while (true) {
      const frame = await this.readFrame();
      if (frame === null) return { messages, closeCode: null, closeReason: "" };
      if (frame.opcode === 0x1) {
        for (const line of decoder.decode(frame.payload).split("\n")) {
          messages.push(JSON.parse(line));
        }
      } else if (frame.opcode === 0x8) {
        const view = new DataView(frame.payload.buffer);
        const code = frame.payload.length >= 2 ? view.getUint16(0) : null;
        return { messages, closeCode: code, closeReason: decoder.decode(frame.payload.slice(2)) };
      }
    }
  }

  /** Drops the TCP connection; safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/** One client frame: FIN, `opcode`, masked `payload` (RFC 6455 section 5.3). */
function maskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const header = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = new Uint8Array(header + 4 + n);
  frame[0] = 0x80 | opcode;
  if (n < 126) frame[1] = 0x80 | n;
  else if (n < 65536) {
    frame[1] = 0x80 | 126;
    new DataView(frame.buffer).setUint16(2, n);
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(n));
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  frame.set(mask, header);
  for (let i = 0; i < n; i++) frame[header + 4 + i] = payload[i] ^ mask[i & 3];
  return frame;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** Buffered reads off a connection: exact byte counts and HTTP heads. */
class ByteReader {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  /** Exactly `n` bytes; at a clean end of stream null when `eofOk`, else an error. */
  readExactly(n: number, eofOk: true): Promise<Uint8Array | null>;
  readExactly(n: number): Promise<Uint8Array>;
  async readExactly(n: number, eofOk = false): Promise<Uint8Array | null> {
    while (this.#buf.length < n) {
      if (!await this.#fill()) {
        if (eofOk && this.#buf.length === 0) return null;
        throw new Error(`Cannot read: stream ended ${n - this.#buf.length} bytes short`);
      }
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n); // a view: no copy of the rest per frame
    return out;
  }

  async readHead(): Promise<{ status: number; headers: Headers }> {
    while (true) {
      const text = decoder.decode(this.#buf);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        const headBytes = encoder.encode(text.slice(0, end + 4)).length;
        this.#buf = this.#buf.slice(headBytes);
        const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
        const headers = new Headers();
        for (const line of lines) {
          const i = line.indexOf(":");
          headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
        }
        return { status: Number(statusLine.split(" ")[1]), headers };
      }
      if (!await this.#fill()) throw new Error("Cannot read HTTP response: stream ended");
    }
  }
}

// ---- chat helpers ----

/** Joins `room` and returns the `joined` reply; fails the test on an error reply. */
export async function join(c: TestClient, room: string, extra: Msg = {}): Promise<Msg> {
  const reply = await c.request(
    { type: "join", room, ...extra },
    (m) => m.type === "joined" || m.type === "error",
  );
  if (reply.type !== "joined") throw new Error(`Cannot join ${room}: ${JSON.stringify(reply)}`);
  return reply;
}

let barriers = 0;

/**
 * Says a marker in `room` and waits until `sender` and every one of `receivers` has it. A room's
 * lines reach each member in order, so whatever the room sent a member before the marker has
 * arrived too: the way to check that something was not sent.
 */
export async function barrier(
  sender: TestClient,
  room: string,
  receivers: TestClient[] = [],
): Promise<Msg> {
  const cid = `barrier-${++barriers}`;
  sender.send({ type: "say", room, text: cid, cid });
  const [echo] = await Promise.all(
    [sender, ...receivers].map((c) => c.waitFor((m) => m.type === "message" && m.cid === cid)),
  );
  return echo;
}

/** Messages of `type` (and `room`, when given) a client has received so far. */
export function received(c: TestClient, type: string, room?: string): Msg[] {
  return c.messages.filter((m) => m.type === type && (room === undefined || m.room === room));
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
