/**
 * Fakes for unit tests that run the hub and clients without a network: a socket that records what
 * it is sent, and client options with generous limits.
 */
import type { ClientOptions, SocketLike } from "../client.ts";
import type { Msg } from "./helpers.ts";

/** A socket that records every frame sent to it and how it was closed. */
export class FakeSocket implements SocketLike {
  readyState = 1;
  bufferedAmount = 0;
  /** Every frame sent, as sent. */
  frames: string[] = [];
  closeCode: number | undefined;
  closeReason: string | undefined;
  /** When true, sent bytes stay buffered, like a peer that stopped reading. */
  stalled = false;
  send(data: string): void {
    this.frames.push(data);
    if (this.stalled) this.bufferedAmount += data.length;
  }
  close(code?: number, reason?: string): void {
    this.closeCode = code;
    this.closeReason = reason;
    this.readyState = 3; // a fake peer answers the close at once
  }
  /** Every message sent, batched frames split. */
  get messages(): Msg[] {
    return this.frames.flatMap((f) => f.split("\n").map((l) => JSON.parse(l)));
  }
  /** The messages sent of one type. */
  of(type: string): Msg[] {
    return this.messages.filter((m) => m.type === type);
  }
}

/** Options for a `Client` on a fake socket: 1 MiB send budget, no rate limit, 60 s handshake. */
export function fakeClientOptions(overrides: Partial<ClientOptions> = {}): ClientOptions {
  return {
    sendQueueBytes: 1 << 20,
    maxFrameBytes: 16384,
    maxTextChars: 4000,
    rate: null,
    handshakeTimeoutMs: 60_000,
    address: "test",
    ...overrides,
  };
}
