/**
 * Remembers which client message ids (`cid`) were accepted, so that a resend within
 * RESEND_WINDOW_MS gets the stored original back instead of being stored twice.
 *
 * Design: a key is room + the sender's name key + cid. Accepted keys live in one Map in acceptance
 * order, so both expiry and the size bound drop entries from its front. Keys of messages on their
 * way into the store are kept apart ("in flight"): a resend of one of those is answered by the
 * original's echo. One owner, the hub; nothing here touches the clock but through its arguments.
 */
import { type ChatMessage, nameKey, RESEND_WINDOW_MS } from "../protocol/protocol.ts";
import { utf8Length } from "../client.ts";

/** Most accepted cids remembered at once; the oldest are forgotten first. */
export const RESEND_GUARD_ENTRIES = 200_000;
/**
 * Most bytes the remembered originals may hold (their texts' UTF-8, plus RESEND_ENTRY_BYTES each);
 * the oldest are forgotten first. With the entry bound alone, 200,000 maximal texts would hold
 * about 2.4 GB: memory must stay bounded whatever the message size (issue 12).
 */
export const RESEND_GUARD_BYTES = 64 * 1024 * 1024;
/** What one remembered original costs besides its text, in bytes (key, message object, map slot). */
export const RESEND_ENTRY_BYTES = 256;

/** The accepted and in-flight cids of one server. */
export class ResendGuard {
  /** Each accepted cid's original and the bytes it was counted at. */
  #accepted = new Map<string, { message: ChatMessage; bytes: number }>();
  #inFlight = new Set<string>();
  #maxEntries: number;
  #maxBytes: number;
  /** Bytes the remembered originals hold, counted as RESEND_GUARD_BYTES says. */
  #bytes = 0;

  constructor(maxEntries = RESEND_GUARD_ENTRIES, maxBytes = RESEND_GUARD_BYTES) {
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  /** Bytes the remembered originals hold now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The guard key of `cid` from the user with name key `fromKey` in `room`. */
  static key(room: string, fromKey: string, cid: string): string {
    return `${room}\u0000${fromKey}\u0000${cid}`;
  }

  /** The key of a stored message; undefined when it carries no cid. */
  static keyOf(message: ChatMessage): string | undefined {
    const { room, from, cid } = message;
    return cid === undefined ? undefined : ResendGuard.key(room, nameKey(from), cid);
  }

  /** Accepted cids remembered now. */
  get size(): number {
    return this.#accepted.size;
  }

  /** The stored original when `key` was accepted within the window before `now`. */
  original(key: string, now: number): ChatMessage | undefined {
    const earlier = this.#accepted.get(key)?.message;
    return earlier !== undefined && earlier.ts >= now - RESEND_WINDOW_MS ? earlier : undefined;
  }

  /** True while the message with `key` is on its way into the store. */
  inFlight(key: string): boolean {
    return this.#inFlight.has(key);
  }

  /** The message with `key` was handed to the store. */
  begin(key: string): void {
    this.#inFlight.add(key);
  }

  /**
   * The store kept it as `message`: remember it, forgetting the oldest past the bounds. `textBytes`
   * is its text's UTF-8 length when the caller has it already.
   */
  accepted(key: string, message: ChatMessage, textBytes = utf8Length(message.text)): void {
    this.#inFlight.delete(key);
    this.#forget(key);
    const bytes = textBytes + RESEND_ENTRY_BYTES;
    this.#accepted.set(key, { message, bytes });
    this.#bytes += bytes;
    while (this.#accepted.size > this.#maxEntries || this.#bytes > this.#maxBytes) {
      this.#forget(this.#accepted.keys().next().value!);
    }
  }

  #forget(key: string): void {
    const entry = this.#accepted.get(key);
    if (entry === undefined) return;
    this.#accepted.delete(key);
    this.#bytes -= entry.bytes;
  }

  /** The store failed to keep it: a resend may try again. */
  failed(key: string): void {
    this.#inFlight.delete(key);
  }

  /** Forgets accepted cids older than the window before `now`. */
  expire(now: number): void {
    for (const [key, { message }] of this.#accepted) {
      if (message.ts >= now - RESEND_WINDOW_MS) break;
      this.#forget(key);
    }
  }
}
