// @ts-check
/// <reference lib="dom" />
/**
 * Messages not yet acknowledged, by cid: resent after a reconnect (the server dedups by cid) until
 * the echo arrives. Room messages persist in localStorage; direct messages are live only.
 */

import { load, save } from "./storage.js";
import { newCid } from "./wire.js";

/**
 * `queued` waits for a connection, `sent` for its echo; `failed` was refused (`error` says why)
 * and goes again only on Retry. `target`: the room, or the other person for a dm.
 * @typedef {{ cid: string, kind: "say" | "dm", target: string, text: string, ts: number,
 *   state: "queued" | "sent" | "failed", error: string }} Entry
 */

/** Outbox holds unacknowledged messages, oldest first. */
export class Outbox {
  /** @type {Map<string, Entry>} */
  #map = new Map(
    load("outbox", []).filter((/** @type {Entry} */ e) => e?.cid && e.text)
      .map((/** @type {Entry} */ e) => [e.cid, { ...e, state: settled(e.state) }]),
  );

  /** Adds a new message with a fresh cid. @param {Entry["kind"]} kind @param {string} target @param {string} text */
  add(kind, target, text) {
    /** @type {Entry} */
    const e = { cid: newCid(), kind, target, text, ts: Date.now(), state: "queued", error: "" };
    this.#map.set(e.cid, e);
    this.#save();
    return e;
  }

  /** @param {string} cid */
  get(cid) {
    return this.#map.get(cid);
  }

  /** @param {string} cid */
  delete(cid) {
    if (this.#map.delete(cid)) this.#save();
  }

  /** Entries for which `match` holds. @param {(e: Entry) => boolean} match */
  where(match = () => true) {
    return [...this.#map.values()].filter(match);
  }

  /** The server refused it: it waits for Retry, across a reload too. @param {Entry} e @param {string} error */
  fail(e, error) {
    e.state = "failed";
    e.error = error;
    this.#save();
  }

  /** Retry pressed: it goes with the next send. @param {Entry} e */
  retry(e) {
    e.state = "queued";
    e.error = "";
    this.#save();
  }

  #save() {
    const says = this.where((e) => e.kind === "say")
      .map((e) => ({ ...e, state: settled(e.state), error: e.state === "failed" ? e.error : "" }));
    save("outbox", says.length ? says : null);
  }
}

/**
 * What a stored entry becomes after a reload: a refused one stays refused; anything else is
 * queued again (a `sent` one may not have arrived). @param {string} state @returns {Entry["state"]}
 */
function settled(state) {
  return state === "failed" ? "failed" : "queued";
}
