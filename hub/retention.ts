/**
 * Applies the store's retention policy in its bounded chunks, yielding to the event loop between
 * chunks so fan-out never waits behind a large deletion; one run at a time.
 */
import type { Store } from "../store/store.ts";

/** Runs retention passes over the store. */
export class Retention {
  #store: Store;
  #failed: (error: unknown) => void;
  #running = false;
  #stopped = false;

  constructor(store: Store, failed: (error: unknown) => void) {
    this.#store = store;
    this.#failed = failed;
  }

  /** Starts a pass for `now` unless one is running or retention was stopped. */
  run(now: number): void {
    if (!this.#running && !this.#stopped) void this.#pass(now);
  }

  /** Ends the current pass after its chunk and starts no more (shutdown). */
  stop(): void {
    this.#stopped = true;
  }

  async #pass(now: number): Promise<void> {
    this.#running = true;
    try {
      while (!this.#stopped && (await this.#store.prune(now)) > 0) {
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } catch (e) {
      this.#failed(e);
    } finally {
      this.#running = false;
    }
  }
}
