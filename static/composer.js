// @ts-check
/// <reference lib="dom" />
/** The message box: Enter sends, Shift+Enter adds a line, grows, counts near the limit. */

/** The server relays one typing notice per 2 s (hub.ts TYPING_INTERVAL_MS); more only waste frames. */
export const TYPING_INTERVAL_MS = 2000;
/**
 * Added to that interval between two notices, in ms: the server measures it between arrivals, and
 * one that arrives a little early is dropped, leaving the indicator dark until the next.
 */
const TYPING_SLACK_MS = 200;
/** The box grows to this height in px (about six lines), then scrolls. */
const MAX_HEIGHT_PX = 160;

/** Composer owns the message box, its counter and its error line. */
export class Composer {
  limit = 4000;
  /** When the last typing notice went, and the last message. */
  #typed = 0;
  #sent = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} a notice waiting for the server to take one */
  #deferred;

  /**
   * `onSend` gets the text (never blank); `onTyping` is throttled.
   * @param {HTMLFormElement} form @param {HTMLTextAreaElement} input @param {HTMLElement} counter
   * @param {HTMLElement} error @param {(text: string) => void} onSend @param {() => void} onTyping
   */
  constructor(form, input, counter, error, onSend, onTyping) {
    this.input = input;
    this.counter = counter;
    this.error = error;
    this.onTyping = onTyping;
    form.onsubmit = (e) => {
      e.preventDefault();
      const text = outgoing(input.value), chars = [...text].length;
      if (!text.trim()) return;
      if (chars > this.limit) {
        return this.showError(`Too long: ${chars} of ${this.limit} characters.`);
      }
      // The throttle keeps running: the server drops notices closer than 2 s anyway.
      this.showError("");
      input.value = "";
      this.#sent = Date.now();
      clearTimeout(this.#deferred);
      this.#changed();
      onSend(text);
    };
    input.onkeydown = (e) => {
      // isComposing: the Enter that picks an IME candidate must not send half a word.
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      }
    };
    input.oninput = () => {
      this.#changed();
      this.#typing();
    };
  }

  /** Sends a typing notice when the server would relay one. */
  #typing() {
    clearTimeout(this.#deferred);
    if (!this.input.value.trim()) return;
    const wait = this.#typed + TYPING_INTERVAL_MS + TYPING_SLACK_MS - Date.now();
    if (wait <= 0) {
      this.#typed = Date.now();
      this.onTyping();
    } else if (this.#sent >= this.#typed) {
      // Typing again soon after a send: the message cleared the indicator on the other screens,
      // and the server would drop a notice now. It goes as soon as the server takes one.
      this.#deferred = setTimeout(() => this.#typing(), wait);
    }
  }

  /** Shows an error under the box; "" clears it. @param {string} text */
  showError(text) {
    this.error.textContent = text;
  }

  /** Clears the error and restarts the typing throttle (a new message or conversation). */
  reset() {
    this.#typed = 0;
    clearTimeout(this.#deferred);
    this.showError("");
  }

  #changed() {
    const { input, counter, limit } = this;
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, MAX_HEIGHT_PX)}px`;
    input.style.overflowY = input.scrollHeight > MAX_HEIGHT_PX ? "auto" : "hidden";
    // Shown from 80% of the limit; the string length bounds the code point count from above.
    // Counted as sent, so the counter and a "Too long" error give the same number.
    const chars = input.value.length < limit * 0.8 ? 0 : [...outgoing(input.value)].length;
    counter.hidden = chars < limit * 0.8;
    counter.classList.toggle("over", chars > limit);
    counter.textContent = `${chars} / ${limit}`;
  }
}

/** What a send makes of the box: trailing spaces are never meant; leading ones may be (code). */
/** @param {string} value */
const outgoing = (value) => value.trimEnd();
