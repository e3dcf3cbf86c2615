// @ts-check
/// <reference lib="dom" />
/** The unread count in the title; desktop notifications for DMs and mentions once turned on. */

import { load, save } from "./storage.js";

/** Puts the unread count in the title, e.g. "(3) Chat". @param {number} n */
export const setTitleCount = (n) => document.title = n ? `(${n}) Chat` : "Chat";

/** Notifier shows desktop notifications once the user has allowed them. */
export class Notifier {
  supported = typeof Notification === "function";
  /** @type {boolean} */
  on = this.supported && load("notify", false) && Notification.permission === "granted";

  /** Why asking did not turn them on, in words for the user; "" otherwise. */
  refusal = "";

  /** Turns notifications on (asking the browser, so call it from a click) or off. */
  async toggle() {
    const asked = !this.on, answer = asked ? await Notification.requestPermission() : "";
    this.on = answer === "granted";
    // Once denied, the browser answers "denied" at once, without asking: only its settings help.
    this.refusal = !asked || this.on
      ? ""
      : answer === "denied"
      ? "Notifications are blocked for this site. Allow them in the browser's site settings."
      : "Notifications were not allowed.";
    save("notify", this.on || null);
  }

  /** Notifies when allowed and the page is not in front. @param {string} title @param {string} body @param {() => void} onClick */
  show(title, body, onClick) {
    if (!this.on || (!document.hidden && document.hasFocus())) return;
    try {
      new Notification(title, { body: body.slice(0, 200), tag: title }).onclick = () => {
        focus();
        onClick();
      };
    } catch { /* some browsers allow them only from a service worker */ }
  }
}
