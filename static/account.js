// @ts-check
/// <reference lib="dom" />
/** Your account: set or change its password, see where you are signed in, sign sessions out. */

import { byId, setText } from "./dom.js";
import { isStr } from "./wire.js";

/** @typedef {{ id: string, device: string, lastSeenAt: number, current: boolean }} Session */

/** "just now", "5 min ago", "3 h ago", "2 d ago". @param {number} ts */
export function ago(ts, now = Date.now()) {
  const min = Math.floor((now - ts) / 60_000);
  if (min < 1) return "just now";
  if (min < 60) return `${min} min ago`;
  return min < 1440 ? `${Math.floor(min / 60)} h ago` : `${Math.floor(min / 1440)} d ago`;
}

/** The account dialog; its commands carry cids starting "account:", and their replies come here. */
export class AccountPanel {
  hasPassword = false;
  /** True once this page asked to sign its own session out. */
  signingOut = false;
  #dialog = byId("account", HTMLDialogElement);
  #current = byId("current-password", HTMLInputElement);
  #next = byId("new-password", HTMLInputElement);
  #note = byId("password-note", HTMLElement);
  #error = byId("account-error", HTMLElement);
  #list = byId("sessions", HTMLElement);

  /** @param {(msg: object) => boolean} send */
  constructor(send) {
    this.send = send;
    byId("account-close", HTMLButtonElement).onclick = () => this.#dialog.close();
    byId("sign-out", HTMLButtonElement).onclick = () => {
      this.signingOut = this.#ask({ type: "sign_out", cid: "account:out" });
    };
    byId("sign-out-others", HTMLButtonElement).onclick = () =>
      this.#ask({ type: "sign_out", others: true, cid: "account:out" });
    this.#list.onclick = (e) => {
      const id = e.target instanceof HTMLElement && e.target.dataset.session;
      if (id) this.#ask({ type: "sign_out", session: id, cid: "account:out" });
    };
    byId("password-form", HTMLFormElement).onsubmit = (e) => {
      e.preventDefault();
      const current = this.hasPassword ? this.#current.value : undefined;
      if (this.#next.value.length < 8) {
        return this.#fail("A password needs 8 or more characters.", this.#next);
      }
      if (current === "") return this.#fail("Enter your current password.", this.#current);
      this.#ask({ type: "set_password", password: this.#next.value, current, cid: "account:pw" });
    };
  }

  open() {
    this.#draw();
    setText(this.#note, "");
    setText(this.#error, "");
    this.#dialog.showModal();
    this.#ask({ type: "sessions", cid: "account:sessions" });
  }

  /** Sends a command, or says it cannot while offline. @param {object} msg */
  #ask(msg) {
    const sent = this.send(msg);
    if (!sent) setText(this.#error, "You are offline; try again when connected.");
    return sent;
  }

  /** @param {string} words @param {HTMLInputElement} field */
  #fail(words, field) {
    setText(this.#error, words);
    field.focus();
  }

  #draw() {
    setText(
      byId("password-title", HTMLElement),
      this.hasPassword ? "Change password" : "Set a password",
    );
    byId("current-row", HTMLElement).hidden = !this.hasPassword;
  }

  /** @param {import("./wire.js").ServerMsg} m */
  sessions(m) {
    const list = /** @type {Session[]} */ (Array.isArray(m.sessions) ? m.sessions : []);
    this.#list.replaceChildren(
      ...list.filter((s) => isStr(s?.id)).map((s) => {
        const li = document.createElement("li"), label = document.createElement("span");
        label.textContent = `${s.device} · ${s.current ? "this device" : ago(s.lastSeenAt)}`;
        li.append(label);
        if (!s.current) {
          const out = document.createElement("button");
          out.className = "small ghost";
          out.dataset.session = s.id;
          out.textContent = "Sign out";
          out.setAttribute("aria-label", `Sign out ${s.device}`);
          li.append(out);
        }
        return li;
      }),
    );
  }

  /** @param {import("./wire.js").ServerMsg} m */
  passwordSet(m) {
    this.hasPassword = true;
    this.#current.value = this.#next.value = "";
    this.#draw();
    const n = typeof m.signedOut === "number" ? m.signedOut : 0;
    setText(
      this.#note,
      `Password saved.${n ? ` Signed out ${n} other session${n > 1 ? "s" : ""}.` : ""}`,
    );
    this.#ask({ type: "sessions", cid: "account:sessions" });
  }

  /** A sign-out ended some sessions: the list is read again (unless it was this one's). */
  signedOut() {
    if (!this.signingOut) this.#ask({ type: "sessions", cid: "account:sessions" });
  }

  /** An error for one of the panel's commands. @param {import("./wire.js").ServerMsg} m */
  error(m) {
    const words = m.code === "wrong_password"
      ? "Your current password is not right."
      : m.code === "rate_limited"
      ? "Too many wrong passwords; try again in a few minutes."
      : String(m.message ?? "Something went wrong.");
    this.signingOut = false;
    this.#fail(words, this.hasPassword ? this.#current : this.#next);
  }
}
