// @ts-check
/// <reference lib="dom" />
/** One WebSocket at a time: hello, batched frames, reconnects with backoff and jitter. */

import { splitFrame } from "./wire.js";

/** Reconnect delays: 0.5 s doubling per failed attempt up to 15 s, each moved by up to ±30%. */
export const INITIAL_BACKOFF_MS = 500, MAX_BACKOFF_MS = 15_000, JITTER = 0.3;

/** @typedef {"connecting" | "online" | "waiting" | "offline" | "stopped"} State */

/**
 * @typedef {object} Options
 * @property {string} url
 * @property {() => object} hello built afresh for every attempt
 * @property {(msg: import("./wire.js").ServerMsg) => void} onMessage
 * @property {(state: State, retryAt: number) => void} onStatus
 * @property {(code: number, reason: string) => boolean} onClose false stops retrying
 */

/** The delay before reconnect attempt `n` (from 0). @param {number} n */
export const backoff = (n, random = Math.random) =>
  Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** Math.min(n, 20)) *
  (1 + JITTER * (2 * random() - 1));

/** Connection keeps one socket open to the server and reopens it when it drops. */
export class Connection {
  /** @type {WebSocket | null} */
  #ws = null;
  #welcomed = false;
  #stopped = true;
  #attempt = 0;
  #retryAt = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #timer;

  /** @param {Options} o */
  constructor(o) {
    this.o = o;
    // Coming back online is the moment to retry: waiting out the backoff only adds delay.
    addEventListener("online", () => this.retryNow());
    addEventListener("offline", () => this.#report());
  }

  get online() {
    return this.#welcomed && this.#ws?.readyState === WebSocket.OPEN;
  }

  start() {
    this.#stopped = false;
    this.#attempt = 0;
    this.retryNow();
  }

  /** Connects now, skipping the rest of the backoff wait. */
  retryNow() {
    if (this.#stopped || this.#ws) return;
    clearTimeout(this.#timer);
    const ws = this.#ws = new WebSocket(this.o.url);
    this.#welcomed = false;
    this.#report();
    ws.onopen = () => ws.send(JSON.stringify(this.o.hello()));
    ws.onmessage = (e) => {
      for (const msg of this.#ws === ws ? splitFrame(String(e.data)) : []) {
        if (msg.type === "welcome") {
          this.#welcomed = true;
          this.#attempt = 0;
          this.#report();
        }
        this.o.onMessage(msg);
      }
    };
    ws.onclose = (e) => {
      if (this.#ws !== ws) return; // replaced or stopped: nothing to report
      this.#ws = null;
      this.#welcomed = false;
      if (!this.o.onClose(e.code, e.reason)) this.#stopped = true;
      else {
        const delay = backoff(this.#attempt++);
        this.#retryAt = Date.now() + delay;
        this.#timer = setTimeout(() => this.retryNow(), delay);
      }
      this.#report();
    };
  }

  /** Sends a command if online; returns whether it did. @param {object} cmd */
  send(cmd) {
    if (this.online) this.#ws?.send(JSON.stringify(cmd));
    return this.online;
  }

  #report() {
    const s = [this.#stopped, this.online, !navigator.onLine, !!this.#ws, true].indexOf(true);
    this.o.onStatus(
      /** @type {State[]} */ (["stopped", "online", "offline", "connecting", "waiting"])[s],
      this.#retryAt,
    );
  }
}
