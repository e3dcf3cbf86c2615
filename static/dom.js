// @ts-check
/// <reference lib="dom" />
/** DOM helpers. Strings always become text nodes: nothing here parses HTML. */

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string>} attrs
 * @param {(Node | string)[]} children
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const k in attrs) el.setAttribute(k, attrs[k]);
  el.append(...children);
  return el;
}

/** @template {HTMLElement} T @param {string} id @param {new () => T} type @returns {T} */
export function byId(id, type) {
  const el = document.getElementById(id);
  if (el instanceof type) return el;
  throw new Error(`Cannot start: #${id} is missing`);
}

/** Sets text only when it changed, which keeps screen readers and selections calm. */
/** @param {Element} el @param {string} text */
export const setText = (el, text) => el.textContent !== text && (el.textContent = text);

/**
 * Makes the `li` children of `parent` match `items`, reusing each key's row so that keyboard
 * focus survives; `update` runs for every item.
 * @template T
 * @param {HTMLElement} parent
 * @param {T[]} items
 * @param {(item: T) => string} keyOf
 * @param {(item: T) => Node[]} build the contents of a new row
 * @param {(li: HTMLElement, item: T) => void} update
 */
export function syncList(parent, items, keyOf, build, update = () => {}) {
  const old = new Map([...parent.children].map((el) => [el.getAttribute("data-key"), el]));
  items.forEach((item, i) => {
    const key = keyOf(item),
      li = old.get(key) ?? h("li", { "data-key": key, class: "item" }, ...build(item));
    old.delete(key);
    if (li instanceof HTMLElement) update(li, item);
    if (parent.children[i] !== li) parent.insertBefore(li, parent.children[i] ?? null);
  });
  for (const el of old.values()) el.remove();
}
