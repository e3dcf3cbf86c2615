/**
 * Bench sockets driven by Linux epoll through FFI (`Deno.dlopen` of libc): the load generator's
 * default I/O on Linux.
 *
 * Why: with 1000 sockets each receiving a frame per server flush, the generator's cost is per
 * socket read, not per byte. A `Deno.TcpConn.read` is an async op (promise, op dispatch, tokio
 * readiness); here one blocking `epoll_wait` (on a helper thread, `nonblocking: true`) reports
 * many ready sockets, and each is read with a plain synchronous `recv` call — the same syscalls a
 * C client would make. Measured on the bench machine: ~9 µs of generator CPU per read against
 * ~13 µs with Deno.connect; what is left is mostly the kernel's loopback TCP work (perf: ~65%).
 *
 * The protocol side (upgrade, masking, frame parsing) is shared with ws_client.ts via frames.ts.
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

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EPOLLERR = 0x8;
const EPOLLHUP = 0x10;
const EAGAIN = 11;
const EINPROGRESS = 115;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct epoll_event): packed on x86-64 (u32 events, u64 data). */
const EVENT_BYTES = 12;
/** Ready sockets taken per epoll_wait. */
const MAX_EVENTS = 1024;
/** Longest one epoll_wait blocks, in ms (it runs on a helper thread, so this only bounds idling). */
const WAIT_TIMEOUT_MS = 20;

function openLibc() {
  return Deno.dlopen(
    "libc.so.6",
    {
      socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
      connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
      setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
      getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
      send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
      recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
      close: { parameters: ["i32"], result: "i32" },
      epoll_create1: { parameters: ["i32"], result: "i32" },
      epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
      epoll_wait: {
        parameters: ["i32", "buffer", "i32", "i32"],
        result: "i32",
        nonblocking: true,
      },
      __errno_location: { parameters: [], result: "pointer" },
    } as const,
  );
}

type Libc = ReturnType<typeof openLibc>["symbols"];

/** True when this platform can use epoll sockets (Linux on x86-64 with FFI allowed). */
export function epollAvailable(): boolean {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return false;
  try {
    EpollLoop.get();
    return true;
  } catch {
    return false;
  }
}

/** One epoll instance per process, and the loop that dispatches its events to sockets. */
class EpollLoop {
  static #instance: EpollLoop | undefined;
  readonly libc: Libc;
  readonly #epfd: number;
  readonly #errno: Deno.UnsafePointerView;
  readonly #events = new Uint8Array(EVENT_BYTES * MAX_EVENTS);
  readonly #ctl = new Uint8Array(EVENT_BYTES);
  readonly #sockets = new Map<number, EpollSocket>();

  private constructor() {
    this.libc = openLibc().symbols;
    this.#epfd = this.libc.epoll_create1(0);
    if (this.#epfd < 0) throw new Error("Cannot create epoll instance");
    const errno = this.libc.__errno_location();
    if (errno === null) throw new Error("Cannot find errno");
    this.#errno = new Deno.UnsafePointerView(errno);
    this.#run();
  }

  /** The process's loop, created on first use. */
  static get(): EpollLoop {
    return EpollLoop.#instance ??= new EpollLoop();
  }

  /** errno of the last failed synchronous libc call on this (the main) thread. */
  errno(): number {
    return this.#errno.getInt32(0);
  }

  /** Registers (op ADD), changes (MOD) or removes (DEL) interest in `fd`. */
  control(op: "add" | "mod" | "del", fd: number, events: number, socket?: EpollSocket): void {
    const view = new DataView(this.#ctl.buffer);
    view.setUint32(0, events, true);
    view.setUint32(4, fd, true);
    view.setUint32(8, 0, true);
    const code = op === "add" ? EPOLL_CTL_ADD : op === "mod" ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
    if (this.libc.epoll_ctl(this.#epfd, code, fd, this.#ctl) < 0) {
      throw new Error(`Cannot ${op} socket ${fd} in epoll: errno ${this.errno()}`);
    }
    if (op === "add" && socket) this.#sockets.set(fd, socket);
    if (op === "del") this.#sockets.delete(fd);
  }

  async #run(): Promise<void> {
    const view = new DataView(this.#events.buffer);
    while (true) {
      const n = await this.libc.epoll_wait(this.#epfd, this.#events, MAX_EVENTS, WAIT_TIMEOUT_MS);
      // Everything ready in this batch arrived by now.
      const now = wallNow();
      for (let i = 0; i < n; i++) {
        const events = view.getUint32(i * EVENT_BYTES, true);
        const fd = view.getInt32(i * EVENT_BYTES + 4, true);
        const socket = this.#sockets.get(fd);
        try {
          socket?.handle(events, now);
        } catch {
          // A protocol error on one socket (say, an oversized frame) ends that socket only.
          socket?.close();
        }
      }
    }
  }
}

/** Parses "127.0.0.1" (or "localhost") into a sockaddr_in for `port`. */
function sockaddr(hostname: string, port: number): Uint8Array {
  const host = hostname === "localhost" ? "127.0.0.1" : hostname;
  const parts = host.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) {
    throw new Error(`Cannot connect: the epoll client needs an IPv4 address, got "${hostname}"`);
  }
  const addr = new Uint8Array(16);
  addr[0] = AF_INET; // sa_family, little-endian u16
  addr[2] = port >> 8; // sin_port, network byte order
  addr[3] = port & 0xff;
  addr.set(parts, 4);
  return addr;
}

/** One client connection on a non-blocking socket driven by the process's epoll loop. */
export class EpollSocket implements BenchSocket {
  /** Reads that returned data, over every connection of this process. */
  static reads = 0;
  onClose: (code: number | null) => void = () => {};

  #loop: EpollLoop;
  #fd: number;
  #state: "connecting" | "upgrading" | "open" | "closed" = "connecting";
  #reader = new FrameReader();
  #head = new Uint8Array(4096);
  #headLen = 0;
  #out: Uint8Array[] = [];
  #outOffset = 0;
  #interest = EPOLLIN | EPOLLOUT;
  #closeCode: number | null = null;
  #bytesRead = 0;
  #mask = crypto.getRandomValues(new Uint8Array(4));
  #opened: { resolve: (s: EpollSocket) => void; reject: (e: Error) => void };

  private constructor(
    loop: EpollLoop,
    fd: number,
    opened: { resolve: (s: EpollSocket) => void; reject: (e: Error) => void },
  ) {
    this.#loop = loop;
    this.#fd = fd;
    this.#opened = opened;
    this.#reader.onPing = (payload) => this.#queue(clientFrame(Opcode.pong, payload, this.#mask));
    this.#reader.onCloseFrame = (code) => this.#finish(code);
  }

  /** Opens `ws://127.0.0.1:port/path` and completes the upgrade within `timeoutMs`. */
  static connect(url: URL, timeoutMs = HANDSHAKE_TIMEOUT_MS): Promise<EpollSocket> {
    const loop = EpollLoop.get();
    const { libc } = loop;
    const addr = sockaddr(url.hostname, Number(url.port || 80));
    const fd = libc.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new Error(`Cannot create socket: errno ${loop.errno()}`);
    // Each say is one small write; Nagle's algorithm would hold it for the previous ACK.
    libc.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, new Int32Array([1]), 4);
    if (libc.connect(fd, addr, addr.length) < 0 && loop.errno() !== EINPROGRESS) {
      const errno = loop.errno();
      libc.close(fd);
      throw new Error(`Cannot connect to ${url.host}: errno ${errno}`);
    }
    const { promise, resolve, reject } = Promise.withResolvers<EpollSocket>();
    const socket = new EpollSocket(loop, fd, { resolve, reject });
    const timer = setTimeout(
      () => socket.#fail(`no upgrade within ${timeoutMs} ms`),
      timeoutMs,
    );
    promise.then(() => clearTimeout(timer), () => clearTimeout(timer));
    socket.#request = upgradeRequest(url);
    loop.control("add", fd, socket.#interest, socket);
    return promise;
  }

  #request: Uint8Array | undefined;

  get onPayload(): PayloadHandler {
    return this.#reader.onPayload;
  }

  set onPayload(handler: PayloadHandler) {
    this.#reader.onPayload = handler;
  }

  get closed(): boolean {
    return this.#state === "closed";
  }

  get closeCode(): number | null {
    return this.#closeCode;
  }

  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** Frames are parsed as they arrive; this only parses what came with the upgrade. */
  start(): void {
    if (this.#reader.pending > 0) this.#reader.parse(wallNow());
  }

  sendText(text: string): void {
    if (this.#state !== "closed") this.#queue(textFrame(text, this.#mask));
  }

  close(): void {
    this.#finish(this.#closeCode);
  }

  /** Called by the loop with the ready events for this socket. */
  handle(events: number, now: number): void {
    if (this.#state === "connecting") {
      if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) === 0) return;
      const err = new Int32Array(1);
      this.#loop.libc.getsockopt(this.#fd, SOL_SOCKET, SO_ERROR, err, new Uint32Array([4]));
      if (err[0] !== 0) return this.#fail(`connect failed: errno ${err[0]}`);
      this.#state = "upgrading";
      this.#queue(this.#request!);
      this.#request = undefined;
      return;
    }
    if (events & EPOLLOUT) this.#flush();
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) this.#read(now);
  }

  #read(now: number): void {
    const { libc } = this.#loop;
    if (this.#state === "upgrading") {
      const n = Number(
        libc.recv(this.#fd, this.#head.subarray(this.#headLen), BigInt(4096 - this.#headLen), 0),
      );
      if (n <= 0) {
        if (n < 0 && this.#loop.errno() === EAGAIN) return;
        return this.#fail("connection closed during upgrade");
      }
      this.#headLen += n;
      let end: number;
      try {
        end = upgradeResponseEnd(this.#head, this.#headLen);
      } catch (e) {
        return this.#fail(e instanceof Error ? e.message : String(e));
      }
      if (end < 0) {
        if (this.#headLen === this.#head.length) this.#fail("upgrade response too long");
        return;
      }
      this.#reader = Object.assign(new FrameReader(this.#head.slice(end, this.#headLen)), {
        onPing: this.#reader.onPing,
        onCloseFrame: this.#reader.onCloseFrame,
      });
      this.#head = new Uint8Array(0);
      this.#state = "open";
      this.#opened.resolve(this);
      return;
    }
    // Read until the kernel has nothing more (or the socket closed while parsing).
    while (this.#state === "open") {
      const space = this.#reader.space();
      const n = Number(libc.recv(this.#fd, space, BigInt(space.length), 0));
      if (n > 0) {
        this.#bytesRead += n;
        EpollSocket.reads++;
        this.#reader.commit(n, now);
        if (n < space.length) return;
      } else if (n === 0) {
        return this.#finish(this.#closeCode);
      } else {
        if (this.#loop.errno() !== EAGAIN) this.#finish(this.#closeCode);
        return;
      }
    }
  }

  #queue(frame: Uint8Array): void {
    this.#out.push(frame);
    // Connecting sockets wait for EPOLLOUT; open ones try to write at once.
    if (this.#out.length === 1 && this.#state !== "connecting") this.#flush();
  }

  #flush(): void {
    const { libc } = this.#loop;
    while (this.#out.length > 0 && this.#state !== "closed") {
      const chunk = this.#out[0];
      const rest = chunk.subarray(this.#outOffset);
      const n = Number(libc.send(this.#fd, rest, BigInt(rest.length), MSG_NOSIGNAL));
      if (n < 0) {
        if (this.#loop.errno() === EAGAIN) break;
        return this.#finish(this.#closeCode);
      }
      this.#outOffset += n;
      if (this.#outOffset === chunk.length) {
        this.#out.shift();
        this.#outOffset = 0;
      }
    }
    this.#setInterest(EPOLLIN | (this.#out.length > 0 ? EPOLLOUT : 0));
  }

  #setInterest(events: number): void {
    if (this.#state === "closed" || events === this.#interest) return;
    this.#interest = events;
    this.#loop.control("mod", this.#fd, events);
  }

  #fail(why: string): void {
    if (this.#state === "closed") return;
    // Reject before #finish does, so the caller sees why.
    if (this.#state !== "open") this.#opened.reject(new Error(`Cannot open WebSocket: ${why}`));
    this.#finish(null);
  }

  #finish(code: number | null): void {
    if (this.#state === "closed") return;
    const wasOpen = this.#state === "open";
    this.#state = "closed";
    this.#closeCode = code;
    this.#out = [];
    try {
      this.#loop.control("del", this.#fd, 0);
    } catch { /* never registered or already gone */ }
    this.#loop.libc.close(this.#fd);
    if (wasOpen) this.onClose(code);
    else this.#opened.reject(new Error(`Cannot open WebSocket: closed with ${code ?? "no code"}`));
  }
}
