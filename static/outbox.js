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
      .map((/** @type {Entry} */ e) => [e.cid, { ...e, state: "queued" }]),
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

  #save() {
    const says = this.where((e) => e.kind === "say").map((e) => ({ ...e, error: "" }));
    save("outbox", says.length ? says : null);
  }
}
