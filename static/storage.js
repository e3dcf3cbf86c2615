// @ts-check
/// <reference lib="dom" />
/** JSON in localStorage (identity, rooms, outbox, notify); failures must not break the page. */

/** @template T @param {string} key @param {T} fallback @returns {T} */
export function load(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(`chat.${key}`) ?? "null") ?? fallback;
  } catch {
    return fallback;
  }
}

/** Stores `value`; null removes the key. @param {string} key @param {unknown} value */
export function save(key, value) {
  try {
    if (value === null) localStorage.removeItem(`chat.${key}`);
    else localStorage.setItem(`chat.${key}`, JSON.stringify(value));
  } catch { /* keep going from memory */ }
}
