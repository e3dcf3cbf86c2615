/**
 * One connection: it owns its socket, checks every inbound frame (type, size, rate) before parsing
 * it once, and sends with a byte budget.
 *
 * Ownership: the client is the only reader of its socket and the only caller of `socket.send`
 * (through `deliver` for room lines and `trySend` for direct replies). The hub owns membership and names; the client
 * only reports frames and its own end to its {@linkcode ClientHandler}.
 *
 * The send budget bounds the socket's `bufferedAmount` (bytes handed to the runtime and not yet
 * written to the kernel). Room lines wait in their room's shared log (room_log.ts) and are handed
 * only as they fit; the client keeps just enough to judge whether its socket drains at all.
 */
import {
  CloseCode,
  type Command,
  type ErrorCode,
  errorLine,
  type Hello,
  parseCommand,
  parseHello,
  type ParseLimits,
} from "./protocol/protocol.ts";
import { FloodWindow, type Rate, TokenBucket } from "./http/rate_limit.ts";
import { HARD_LIMIT_FACTOR, STALL_TIMEOUT_MS } from "./ops/limits.ts";

/** What the client needs of a WebSocket; a fake in unit tests. */
export interface SocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** Receives what a client hears; the hub implements it. */
export interface ClientHandler {
  /** A well-formed hello arrived (once per connection). */
  hello(client: Client, hello: Hello): void;
  /** A well-formed command arrived after the hello, within the rate limits. */
  command(client: Client, command: Command): void;
  /** The client refused a frame with an error (counted, not fatal). */
  rejected(client: Client, code: ErrorCode): void;
  /** A reply did not fit the client's send budget: the handler evicts it (4008) and logs why. */
  slow(client: Client, kind: "over_budget"): void;
  /** The client is gone, for whatever reason; called once. */
  closed(client: Client, reason: DisconnectReason): void;
}

/** Why a client left, named for logs and metrics. */
export type DisconnectReason =
  | "client"
  | "idle"
  | "lost"
  | "bad_handshake"
  | "binary_frame"
  | "frame_too_large"
  | "slow_consumer"
  | "name_taken"
  | "replaced"
  | "rate_limited"
  | "unauthorized"
  | "unavailable"
  | "shutdown";

/**
 * How many refusals within FLOOD_WINDOW_MS mark a client as flooding: it is then closed with 4029.
 * Every refusal counts (a malformed frame, rate_limited, the hub's not_in_room and the like) except
 * `unavailable`, which is the server's own state and asks the client to resend. The window applies
 * with `--rate-limit off` too: no legitimate client is refused 100 times a minute, and without it a
 * stream of refused frames would cost the server a reply each, unbounded (issue 14, item 2).
 */
export const FLOOD_REJECTIONS = 100;
/** The window FLOOD_REJECTIONS are counted in, in ms. */
export const FLOOD_WINDOW_MS = 60_000;
/** A stall is judged over at least this many looks, so one late look after a long turn is not one. */
export const STALL_LOOKS = 3;
/** Frames a client may send after its hello and before its welcome (while credentials are checked). */
export const MAX_EARLY_FRAMES = 32;
/** Longest delay setTimeout takes, in ms; longer expiries re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Control commands (join, leave, rooms, history, typing) may come this many times faster than messages. */
export const CONTROL_RATE_FACTOR = 5;

/** Options for {@linkcode Client}. */
export interface ClientOptions extends ParseLimits {
  /** Bytes the socket may hold unsent before the client counts as slow. */
  sendQueueBytes: number;
  /** Largest inbound frame in UTF-8 bytes. */
  maxFrameBytes: number;
  /** Message rate (say, dm); null turns every rate limit off. */
  rate: Rate | null;
  /** Time allowed for the hello, in ms. */
  handshakeTimeoutMs: number;
  /** The peer's address, for logs and per-address limits. */
  address: string;
  /** @default Date.now */
  now?: () => number;
  /** Called once when the client is gone, after the handler heard it. */
  onGone?: () => void;
}

/** One WebSocket connection and its per-connection state. */
export class Client {
  readonly socket: SocketLike;
  readonly address: string;
  /** The registered name; null until the hello is accepted. Set only by `Sessions` (sessions.ts). */
  name: string | null = null;
  /** The name's collision key (see `nameKey`). Set only by `Sessions`. */
  key = "";

  #handler: ClientHandler;
  #options: ClientOptions;
  #messages: TokenBucket | null;
  #control: TokenBucket | null;
  /** Created at the first refusal. */
  #flood: FloodWindow | null = null;
  #handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #greeted = false;
  /** `bufferedAmount` after the last send or look: a lower reading later is progress. */
  #lastBuffered = 0;
  /** Something was handed to the socket since the last look (it had room: progress). */
  #handed = false;
  /** Since when (ms) the socket has drained nothing while lines waited; -1 when it has. */
  #stuckSince = -1;
  #stuckLooks = 0;
  /** Frames that arrived between the hello and the welcome; null once ready. */
  #early: string[] | null = [];
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  #now: () => number;

  constructor(socket: SocketLike, handler: ClientHandler, options: ClientOptions) {
    this.socket = socket;
    this.address = options.address;
    this.#handler = handler;
    this.#options = options;
    const now = options.now ?? Date.now;
    this.#now = now;
    const rate = options.rate;
    this.#messages = rate ? new TokenBucket(rate, now) : null;
    this.#control = rate
      ? new TokenBucket(
        {
          perSecond: rate.perSecond * CONTROL_RATE_FACTOR,
          burst: rate.burst * CONTROL_RATE_FACTOR,
        },
        now,
      )
      : null;
    this.#handshakeTimer = setTimeout(() => {
      this.#handshakeTimer = undefined;
      this.close(CloseCode.badHandshake, "no hello in time", "bad_handshake");
    }, options.handshakeTimeoutMs);
  }

  /** True once the client is closed or closing; it then receives nothing more. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The send budget, in bytes: what the socket may hold unsent. */
  get sendQueueBytes(): number {
    return this.#options.sendQueueBytes;
  }

  /**
   * Hands a frame to the socket; the room log has checked that it fits (see room_log.ts). It reads
   * nothing back: the next look (`stalled`) counts a handed frame as progress and reads then.
   */
  deliver(frame: string): void {
    if (this.#closed) return;
    this.socket.send(frame);
    this.#handed = true;
  }

  /**
   * Judges a client that has room lines waiting (`buffered`: its socket's `bufferedAmount`, read
   * once by the caller): true once its socket has drained nothing for STALL_TIMEOUT_MS, across at
   * least STALL_LOOKS looks. Progress is a lower `bufferedAmount` than
   * at the last send or look, an empty socket, or a frame handed since the last look.
   */
  stalled(now: number, buffered = this.socket.bufferedAmount): boolean {
    const progressed = this.#handed || buffered === 0 || buffered < this.#lastBuffered;
    this.#handed = false;
    this.#lastBuffered = buffered;
    if (progressed) {
      this.#stuckSince = -1;
      this.#stuckLooks = 0;
      return false;
    }
    if (this.#stuckSince < 0) this.#stuckSince = now;
    this.#stuckLooks++;
    return this.#stuckLooks >= STALL_LOOKS && now - this.#stuckSince >= STALL_TIMEOUT_MS;
  }

  /**
   * Sends a direct reply (not a room line); false when the socket already holds more than
   * HARD_LIMIT_FACTOR budgets with it, and the caller then evicts the client (4008). An empty
   * socket takes any one frame. Sending to a closed client is a no-op that reports success.
   */
  trySend(frame: string): boolean {
    if (this.#closed) return true;
    const buffered = this.socket.bufferedAmount;
    if (
      buffered > 0 &&
      buffered + utf8Length(frame) > this.#options.sendQueueBytes * HARD_LIMIT_FACTOR
    ) return false;
    this.socket.send(frame);
    this.#lastBuffered = this.socket.bufferedAmount;
    return true;
  }

  /** Handles one inbound frame from the socket. */
  receive(data: unknown): void {
    if (this.#closed) return;
    if (typeof data !== "string") {
      this.close(CloseCode.binaryFrame, "binary frames are not accepted", "binary_frame");
      return;
    }
    if (frameTooLarge(data, this.#options.maxFrameBytes)) {
      this.close(
        CloseCode.frameTooLarge,
        `frame over ${this.#options.maxFrameBytes} bytes`,
        "frame_too_large",
      );
      return;
    }
    if (!this.#greeted) {
      const hello = parseHello(data);
      if (!hello.ok) {
        this.close(CloseCode.badHandshake, hello.message.slice(0, 120), "bad_handshake");
        return;
      }
      this.#greeted = true;
      clearTimeout(this.#handshakeTimer);
      this.#handshakeTimer = undefined;
      this.#handler.hello(this, hello.value);
      return;
    }
    if (this.#early !== null) {
      // Credentials are being checked; keep the frame (bounded) and replay it after the welcome.
      if (this.#early.length >= MAX_EARLY_FRAMES) {
        this.close(CloseCode.badHandshake, "too many frames before welcome", "bad_handshake");
      } else this.#early.push(data);
      return;
    }
    this.#command(data);
  }

  /** Called by the hub once the welcome is sent: replays frames that came early. */
  ready(): void {
    const early = this.#early;
    this.#early = null;
    for (const frame of early ?? []) this.#command(frame);
  }

  /** Closes the connection with 4001 when its credential expires at `atMs`. */
  expireAt(atMs: number): void {
    clearTimeout(this.#expiryTimer);
    const delay = atMs - this.#now();
    if (delay <= 0) {
      this.close(CloseCode.unauthorized, "token invalid or expired", "unauthorized");
      return;
    }
    this.#expiryTimer = setTimeout(() => this.expireAt(atMs), Math.min(delay, MAX_TIMER_MS));
  }

  #command(data: string): void {
    if (this.#closed) return;
    const parsed = parseCommand(data, this.#options);
    if (!parsed.ok) {
      // A frame that does not parse costs a reply like any command, so it takes a control token:
      // otherwise a stream of them is answered as fast as it comes (issue 14, item 2).
      if (this.#control !== null && !this.#control.take()) {
        this.refuse(
          "rate_limited",
          "Cannot read the frame: over the rate limit, slow down",
          parsed.cid,
        );
      } else this.refuse(parsed.code, parsed.message, parsed.cid);
      return;
    }
    const command = parsed.value;
    const isMessage = command.type === "say" || command.type === "dm";
    const bucket = isMessage ? this.#messages : this.#control;
    if (bucket !== null && !bucket.take()) {
      this.refuse(
        "rate_limited",
        `Cannot ${command.type}: over the rate limit, slow down`,
        command.cid,
      );
      return;
    }
    this.#handler.command(this, command);
  }

  /**
   * Sends an error reply and reports it; the connection stays open unless the refusal is one too
   * many (see `countRefusal`).
   */
  refuse(code: ErrorCode, message: string, cid?: string): void {
    this.#handler.rejected(this, code);
    const line = errorLine(code, message, cid);
    if (!this.trySend(line)) return this.#handler.slow(this, "over_budget");
    this.countRefusal(code);
  }

  /**
   * Counts a refusal already sent (by `refuse`, or by the hub for its own refusals) toward the
   * flood window, and closes the client with 4029 when it is the one over FLOOD_REJECTIONS.
   */
  countRefusal(code: ErrorCode): void {
    if (this.#closed || code === "unavailable") return;
    this.#flood ??= new FloodWindow(FLOOD_REJECTIONS, FLOOD_WINDOW_MS, this.#now);
    if (this.#flood.record()) this.close(CloseCode.flooding, "kept flooding", "rate_limited");
  }

  /**
   * Closes the socket with a code and tells the handler once. Safe to call twice. The handler
   * hears at once, not at the socket's close event, because a closing socket can stay in CLOSING
   * for a long time and must not hold membership or a name meanwhile.
   */
  close(code: number, reason: string, why: DisconnectReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimers();
    try {
      this.socket.close(code, reason);
    } catch {
      // The socket may already be closed by the peer; the outcome is the same.
    }
    this.#handler.closed(this, why);
    this.#options.onGone?.();
  }

  /** The socket closed from the other side (or idled out); tells the handler once. */
  socketClosed(why: DisconnectReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimers();
    this.#handler.closed(this, why);
    this.#options.onGone?.();
  }

  #clearTimers(): void {
    clearTimeout(this.#handshakeTimer);
    clearTimeout(this.#expiryTimer);
    this.#handshakeTimer = undefined;
    this.#expiryTimer = undefined;
  }
}

/** True when `text` is longer than `maxBytes` in UTF-8, counting only when length alone cannot tell. */
export function frameTooLarge(text: string, maxBytes: number): boolean {
  // UTF-8 needs at least one byte and at most three per UTF-16 code unit.
  if (text.length > maxBytes) return true;
  if (text.length * 3 <= maxBytes) return false;
  return utf8Length(text) > maxBytes;
}

/** Bytes `text` takes in UTF-8, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff) {
      // A surrogate pair is 2 code units and 4 bytes: add 2 across the pair.
      bytes += 1;
    } else if (c >= 0xdc00 && c <= 0xdfff) bytes += 1;
    else bytes += 2;
  }
  return bytes;
}
