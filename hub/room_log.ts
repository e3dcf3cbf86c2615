/**
 * A room's outbound log: the lines its members are owed, kept once and shared by all of them, with
 * a cursor only for the members that are behind.
 *
 * Design (issue 12). "Slow" means "reads more slowly than the room talks", not "the server was busy
 * for a moment": a socket's `bufferedAmount` falls only when the runtime gets to run the writes, so
 * while the server reads a flood every member looks stalled. Therefore:
 * - Every line the room sends is appended here once, with its UTF-8 size and a running byte offset.
 * - `serve` hands each member only what fits in its send budget now (at least one frame when its
 *   socket holds nothing). Members that got everything share one cursor (`#served`) and the frames
 *   built for it once; a member that did not get everything keeps its own cursor in `#behind` and
 *   gets the rest in a later pass, as its socket drains.
 * - A member is evicted (after the member loop, by the caller) when it falls out of the window:
 *   more than `windowBytes` behind the head ("behind"), or no progress at all for the client's
 *   stall timeout while lines wait for it ("stalled"). What it misses it gets back with `join`
 *   and `since`: every line here that matters is a committed message with a seq.
 * - Lines below every cursor are dropped, so memory is bounded by the window per room.
 */
import { type Client, utf8Length } from "../client.ts";

/** Why a member was evicted from a room's log, for logs and the close reason. */
export type SlowKind = "behind" | "stalled" | "over_budget";

/** A member to evict, found during a pass and closed by the caller after it. */
export interface Eviction {
  client: Client;
  kind: SlowKind;
}

interface Entry {
  line: string;
  /** UTF-8 bytes of the line. */
  bytes: number;
  /** Running total of UTF-8 bytes up to and including this line (the newline not counted). */
  end: number;
  /** A member who must not receive this line (the joiner of its own join, the typist). */
  except?: Client;
}

/** One frame handed out: joined lines, how many, their bytes, and the index after the last. */
interface Frame {
  frame: string;
  count: number;
  bytes: number;
  next: number;
}

/** What one `serve` pass did. */
export interface ServeResult {
  /** Lines handed to members (a line to n members counts n). */
  delivered: number;
  /** Frames handed to members. */
  frames: number;
  /** Lines handed to members that were behind before this pass. */
  behindServed: number;
}

/** Options for {@linkcode RoomLog}. */
export interface RoomLogOptions {
  /** Longest frame, in UTF-8 bytes; a single longer line is its own frame. */
  maxFrameBytes: number;
  /** How far, in UTF-8 bytes, a member may fall behind the head before it is evicted. */
  windowBytes: number;
}

/** A room's outbound lines and the cursors of the members behind them. */
export class RoomLog {
  #entries: Entry[] = [];
  /** Absolute index of `#entries[0]`. */
  #first = 0;
  /** Running byte total before `#entries[0]`. */
  #baseBytes = 0;
  /** Members not in `#behind` have been handed every line below this absolute index. */
  #served = 0;
  /** Members that have not been handed everything: the absolute index of their next line. */
  #behind = new Map<Client, number>();
  #options: RoomLogOptions;

  constructor(options: RoomLogOptions) {
    this.#options = options;
  }

  /** Absolute index after the newest line. */
  get #head(): number {
    return this.#first + this.#entries.length;
  }

  /** True when lines wait that no member has been offered yet. */
  get unserved(): boolean {
    return this.#served < this.#head;
  }

  /** True when some member is behind the head and must be served again as its socket drains. */
  get lagging(): boolean {
    return this.#behind.size > 0;
  }

  /** UTF-8 bytes held now. */
  get heldBytes(): number {
    const n = this.#entries.length;
    return n === 0 ? 0 : this.#entries[n - 1].end - this.#baseBytes;
  }

  /** Appends a line for the members, except `except` if given. */
  append(line: string, except?: Client): void {
    const bytes = utf8Length(line);
    const n = this.#entries.length;
    const end = (n === 0 ? this.#baseBytes : this.#entries[n - 1].end) + bytes;
    this.#entries.push(except === undefined ? { line, bytes, end } : { line, bytes, end, except });
  }

  /**
   * A member joins: it is owed only lines appended from now on. Lines already waiting belong to
   * the members of before, and are served to them on the next pass, not to everyone now.
   */
  enter(client: Client): void {
    if (this.unserved) this.#behind.set(client, this.#head);
  }

  /** A member left the room: it is owed nothing more. */
  forget(client: Client): void {
    this.#behind.delete(client);
  }

  /**
   * Hands every member what fits in its budget, records who is behind, and returns the members to
   * evict (the caller closes them after the pass: closing runs the leave path, which edits the
   * member set this pass iterates).
   */
  serve(members: Iterable<Client>, now: number, evict: Eviction[]): ServeResult {
    const result: ServeResult = { delivered: 0, frames: 0, behindServed: 0 };
    const head = this.#head;
    if (this.#served < head) {
      const from = this.#served;
      let excluded: Set<Client> | null = null;
      for (let i = from; i < head; i++) {
        const except = this.#entries[i - this.#first].except;
        if (except !== undefined) (excluded ??= new Set()).add(except);
      }
      const shared = this.#frames(from, head, undefined, Infinity, this.#options.maxFrameBytes);
      for (const member of members) {
        if (member.closed || this.#behind.has(member)) continue;
        const frames = excluded !== null && excluded.has(member)
          ? this.#frames(from, head, member, Infinity, this.#options.maxFrameBytes)
          : shared;
        const next = this.#hand(member, frames, from, head, member.socket.bufferedAmount, result);
        if (next < head) this.#behind.set(member, next);
      }
      this.#served = head;
    }
    for (const [member, cursor] of this.#behind) {
      // Closed, or owed nothing (it entered after the lines that waited): back with the others.
      if (member.closed || cursor >= head) {
        this.#behind.delete(member);
        continue;
      }
      if (this.#bytesBetween(cursor, head) > this.#options.windowBytes) {
        this.#behind.delete(member);
        evict.push({ client: member, kind: "behind" });
        continue;
      }
      // One reading of the socket per member and pass: it is a call into the runtime.
      const buffered = member.socket.bufferedAmount;
      if (member.stalled(now, buffered)) {
        this.#behind.delete(member);
        evict.push({ client: member, kind: "stalled" });
        continue;
      }
      const budget = member.sendQueueBytes - buffered;
      if (budget <= 0 && buffered > 0) continue;
      // Frames no longer than what fits, so a member catching up is never handed past its budget
      // (only a single line longer than the budget goes alone, to an idle socket).
      const cap = Math.min(this.#options.maxFrameBytes, Math.max(1, budget));
      const frames = this.#frames(cursor, head, member, budget, cap);
      const before = result.delivered;
      const next = this.#hand(member, frames, cursor, head, buffered, result);
      result.behindServed += result.delivered - before;
      if (next >= head) this.#behind.delete(member);
      else this.#behind.set(member, next);
    }
    this.#trim();
    return result;
  }

  /**
   * Hands `frames` (the lines of [from, to) this member gets) in order while they fit beside the
   * `buffered` bytes its socket holds; returns the index after the last line handed, `to` when
   * there was nothing for it.
   */
  #hand(
    member: Client,
    frames: Frame[],
    from: number,
    to: number,
    buffered: number,
    result: ServeResult,
  ): number {
    if (frames.length === 0) return to;
    let budget = member.sendQueueBytes - buffered;
    let idle = buffered === 0;
    let next = from;
    for (const f of frames) {
      if (!idle && f.bytes > budget) break;
      member.deliver(f.frame);
      budget -= f.bytes;
      idle = false;
      next = f.next;
      result.frames++;
      result.delivered += f.count;
    }
    return next;
  }

  /**
   * Frames of at most `frameBytes` of the lines in [from, to), skipping lines `member` must not
   * get, until they make more than `maxBytes` (at least one frame).
   */
  #frames(
    from: number,
    to: number,
    member: Client | undefined,
    maxBytes: number,
    frameBytes: number,
  ): Frame[] {
    const frames: Frame[] = [];
    let lines: string[] = [], bytes = 0, total = 0;
    let i = from;
    const close = (next: number) => {
      if (lines.length === 0) return;
      const frame = lines.length === 1 ? lines[0] : lines.join("\n");
      frames.push({ frame, count: lines.length, bytes: bytes + lines.length - 1, next });
      total += bytes + lines.length - 1;
      lines = [];
      bytes = 0;
    };
    for (; i < to; i++) {
      const e = this.#entries[i - this.#first];
      if (member !== undefined && e.except === member) continue;
      if (lines.length > 0 && bytes + lines.length + e.bytes > frameBytes) {
        close(i);
        if (total >= maxBytes) return frames;
      }
      lines.push(e.line);
      bytes += e.bytes;
    }
    close(i);
    return frames;
  }

  /** UTF-8 bytes of the lines in [from, to) (newlines not counted). */
  #bytesBetween(from: number, to: number): number {
    if (from >= to) return 0;
    const before = from === this.#first
      ? this.#baseBytes
      : this.#entries[from - 1 - this.#first].end;
    return this.#entries[to - 1 - this.#first].end - before;
  }

  /** Drops lines every member has been handed. */
  #trim(): void {
    let low = this.#served;
    for (const cursor of this.#behind.values()) if (cursor < low) low = cursor;
    const drop = low - this.#first;
    if (drop <= 0) return;
    this.#baseBytes = this.#entries[drop - 1].end;
    this.#entries = drop === this.#entries.length ? [] : this.#entries.slice(drop);
    this.#first = low;
  }
}
