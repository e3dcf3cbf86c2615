// @ts-check
/// <reference lib="dom" />
/**
 * The scrolling message list: patches only changed rows (a screen reader announces only new ones)
 * and keeps the reader's place: the bottom only if they were there, still when rows go in above.
 */

/** Within this many px of an end counts as being there. */
const SLACK_PX = 60;

/** MessageLog owns the message list and its scroll position. */
export class MessageLog {
  #view = "";
  /** @type {string[]} */
  #sigs = [];
  /** @type {HTMLElement[]} */
  #nodes = [];

  /**
   * `s` scrolls; `list` holds stored messages and `pending` unacknowledged ones.
   * @param {HTMLElement} s @param {HTMLElement} list @param {HTMLElement} pending
   * @param {HTMLElement} pill @param {() => void} onNearTop
   */
  constructor(s, list, pending, pill, onNearTop) {
    this.s = s;
    this.list = list;
    this.pending = pending;
    this.pill = pill;
    this.onNearTop = onNearTop;
    s.onscroll = () => {
      if (this.atBottom) pill.hidden = true;
      if (s.scrollTop < SLACK_PX) onNearTop();
    };
    pill.onclick = () => this.toBottom();
  }

  get atBottom() {
    return this.s.scrollHeight - this.s.scrollTop - this.s.clientHeight < SLACK_PX;
  }

  toBottom() {
    this.s.scrollTop = this.s.scrollHeight;
    this.pill.hidden = true;
  }

  /**
   * Shows `rows`, and `pendingRows` unless null, for the view called `view`.
   * @param {string} view @param {import("./render.js").Row[]} rows @param {HTMLElement[] | null} pendingRows
   */
  update(view, rows, pendingRows) {
    const s = this.s;
    if (view !== this.#view) {
      this.list.replaceChildren();
      this.#sigs = this.#nodes = [];
    }
    const wasAtBottom = this.atBottom, fromBottom = s.scrollHeight - s.scrollTop;
    // Keep the longest unchanged head and tail; rebuild only the rows between them.
    const old = this.#sigs, sigs = rows.map((r) => r.sig);
    let head = 0, tail = 0;
    while (head < old.length && old[head] === sigs[head]) head++;
    while (
      tail < old.length - head && tail < sigs.length - head &&
      old.at(-1 - tail) === sigs.at(-1 - tail)
    ) tail++;
    const end = old.length - tail,
      made = rows.slice(head, sigs.length - tail).map((r) => r.build());
    for (const n of this.#nodes.slice(head, end)) n.remove();
    this.#nodes[end] ? this.#nodes[end].before(...made) : this.list.append(...made);
    this.#nodes = [...this.#nodes.slice(0, head), ...made, ...this.#nodes.slice(end)];
    this.#sigs = sigs;
    if (pendingRows) this.pending.replaceChildren(...pendingRows);

    if (view !== this.#view || wasAtBottom) this.toBottom();
    // Rows went in above what the reader sees: keep that in place.
    else if (tail && made.length) s.scrollTop = s.scrollHeight - fromBottom;
    else if (made.length) this.pill.hidden = false;
    this.#view = view;
    // A list too short to scroll could never reach the top to ask for more.
    if (s.scrollHeight <= s.clientHeight + SLACK_PX) this.onNearTop();
  }
}
