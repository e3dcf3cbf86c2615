/**
 * Upgrades that wait for a pending slot. A connection that has not said hello holds a pending
 * slot (`--max-pending-connections` in all, `--max-pending-per-ip` per address); an upgrade over
 * either limit waits here, in arrival order, up to `--upgrade-wait`, instead of being refused at
 * once, so a reconnect storm (a restart, a NAT office coming back) gets in as fast as hellos free
 * the slots. It is refused (503 or 429, as before) only when its wait runs out or the queue is
 * full. A waiting upgrade holds only its HTTP request: no WebSocket, nothing buffered.
 *
 * `wake` is called whenever a slot frees; it lets in the first waiters that fit, counting the ones
 * already let in but not yet upgraded, so one freed slot never lets in two.
 */

import { MAX_WAITING_PER_ADDRESS, MAX_WAITING_UPGRADES } from "../ops/limits.ts";

interface Waiter {
  address: string;
  resolve: (admitted: boolean) => void;
  cancel: () => void;
}

/** Options for {@linkcode UpgradeQueue}. */
export interface UpgradeQueueOptions {
  /** How long an upgrade may wait, in ms; 0: refused at once. */
  waitMs: number;
  /** True when one more pending connection fits in all, counting `extra` more (let in, not taken). */
  fitsAll(extra: number): boolean;
  /** True when one more pending connection from `address` fits, counting `extra` more from it. */
  fitsAddress(address: string, extra: number): boolean;
  /** Runs `fn` after `ms`, returning a cancel function. @default setTimeout */
  timer?: (fn: () => void, ms: number) => () => void;
}

/** The waiting upgrades, first come first served. */
export class UpgradeQueue {
  #options: UpgradeQueueOptions;
  #waiting: Waiter[] = [];
  #perAddress = new Map<string, number>();
  /** Let in, slot not taken yet: in all and per address. */
  #letIn = 0;
  #letInHere = new Map<string, number>();

  constructor(options: UpgradeQueueOptions) {
    this.#options = options;
  }

  /** Upgrades waiting now. */
  get size(): number {
    return this.#waiting.length;
  }

  /**
   * Waits for a slot for `address`: true once one is free (call `taken` when the upgrade has
   * taken it, or failed), false when the wait ran out or the queue is full.
   */
  wait(address: string): Promise<boolean> {
    const here = this.#perAddress.get(address) ?? 0;
    if (
      this.#options.waitMs <= 0 || this.#waiting.length >= MAX_WAITING_UPGRADES ||
      here >= MAX_WAITING_PER_ADDRESS
    ) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = this.#options.timer ?? defaultTimer;
      const waiter: Waiter = { address, resolve, cancel: () => {} };
      waiter.cancel = timer(() => {
        this.#remove(waiter);
        resolve(false);
      }, this.#options.waitMs);
      this.#waiting.push(waiter);
      this.#perAddress.set(address, here + 1);
    });
  }

  /** An upgrade let in by `wait` has taken its slot (or failed without it). */
  taken(address: string): void {
    this.#letIn--;
    const n = (this.#letInHere.get(address) ?? 1) - 1;
    if (n <= 0) this.#letInHere.delete(address);
    else this.#letInHere.set(address, n);
  }

  /** A slot may have freed: lets in the first waiters that fit now, in order. */
  wake(): void {
    for (let i = 0; i < this.#waiting.length && this.#options.fitsAll(this.#letIn);) {
      const w = this.#waiting[i];
      if (!this.#options.fitsAddress(w.address, this.#letInHere.get(w.address) ?? 0)) {
        i++;
        continue;
      }
      this.#remove(w);
      w.cancel();
      this.#letIn++;
      this.#letInHere.set(w.address, (this.#letInHere.get(w.address) ?? 0) + 1);
      w.resolve(true);
    }
  }

  #remove(w: Waiter): void {
    const i = this.#waiting.indexOf(w);
    if (i < 0) return;
    this.#waiting.splice(i, 1);
    const n = (this.#perAddress.get(w.address) ?? 1) - 1;
    if (n <= 0) this.#perAddress.delete(w.address);
    else this.#perAddress.set(w.address, n);
  }
}

function defaultTimer(fn: () => void, ms: number): () => void {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
}
