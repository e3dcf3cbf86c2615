// @ts-check
/// <reference lib="dom" />
/** The message box: Enter sends, Shift+Enter adds a line, grows, counts near the limit. */

/** The server relays one typing notice per 2 s; more only waste frames. */
export const TYPING_INTERVAL_MS = 2000;
/** The box grows to this height in px (about six lines), then scrolls. */
const MAX_HEIGHT_PX = 160;

/** Composer owns the message box, its counter and its error line. */
export class Composer {
  limit = 4000;
  #typed = 0;

  /**
   * `onSend` gets the text (never blank); `onTyping` is throttled.
   * @param {HTMLFormElement} form @param {HTMLTextAreaElement} input @param {HTMLElement} counter
   * @param {HTMLElement} error @param {(text: string) => void} onSend @param {() => void} onTyping
   */
  constructor(form, input, counter, error, onSend, onTyping) {
    this.input = input;
    this.counter = counter;
    this.error = error;
    form.onsubmit = (e) => {
      e.preventDefault();
      // Trailing spaces are never meant; leading ones may be (indented code).
      const text = input.value.trimEnd(), chars = [...text].length;
      if (!text.trim()) return;
      if (chars > this.limit) {
        return this.showError(`Too long: ${chars} of ${this.limit} characters.`);
      }
      // The throttle keeps running: the server drops notices closer than 2 s anyway.
      this.showError("");
      input.value = "";
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
      if (input.value.trim() && Date.now() - this.#typed >= TYPING_INTERVAL_MS) {
        this.#typed = Date.now();
        onTyping();
      }
    };
  }

  /** Shows an error under the box; "" clears it. @param {string} text */
  showError(text) {
    this.error.textContent = text;
  }

  /** Clears the error and restarts the typing throttle (a new message or conversation). */
  reset() {
    this.#typed = 0;
    this.showError("");
  }

  #changed() {
    const { input, counter, limit } = this;
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, MAX_HEIGHT_PX)}px`;
    input.style.overflowY = input.scrollHeight > MAX_HEIGHT_PX ? "auto" : "hidden";
    // Shown from 80% of the limit; the string length bounds the code point count from above.
    const chars = input.value.length < limit * 0.8 ? 0 : [...input.value].length;
    counter.hidden = chars < limit * 0.8;
    counter.classList.toggle("over", chars > limit);
    counter.textContent = `${chars} / ${limit}`;
  }
}
