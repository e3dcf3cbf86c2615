// @ts-check
/// <reference lib="dom" />
/** Sign-in: the server's mode from /config.json, the secrets a tab signs in with, and the card. */

import { byId } from "./dom.js";
import { load, save } from "./storage.js";
import { nameProblem } from "./wire.js";

/** How long the page waits for /config.json before using the mode it saw last, in ms. */
const MODE_WAIT_MS = 3000;
/**
 * How long a new tab waits for an open one to hand over its password or token, in ms: the first
 * screen of a browser session's first tab shows this much later, and only on servers that want one.
 */
const HANDOFF_WAIT_MS = 400;

/** What the server wants at the hello: `auth` "token" means a sign-in token that names the user. */
/** `registration` "password": a new name needs an account password at its first hello. */
/** @typedef {{ auth: "none" | "password" | "token", password: boolean, registration?: string }} Mode */
/** @typedef {{ password: string, token: string }} Secret */

/** Asks the server for its sign-in mode; the last one seen (or none) when it cannot answer. */
export async function fetchMode() {
  try {
    const r = await fetch("/config.json", { signal: AbortSignal.timeout(MODE_WAIT_MS) });
    const c = await r.json();
    /** @type {Mode} */
    const mode = {
      auth: c?.auth === "token" ? "token" : c?.auth === "password" ? "password" : "none",
      password: c?.password === true,
      registration: c?.registration === "password" ? "password" : "open",
    };
    save("mode", mode);
    return mode;
  } catch {
    return load("mode", /** @type {Mode} */ ({ auth: "none", password: false }));
  }
}

/**
 * The password and token this tab signs in with. They stay in sessionStorage, so a reload goes
 * straight in and nothing keeps them once the browser closes: localStorage would leave the chat's
 * shared password on disk for anyone who later uses the profile. A new tab asks the open ones over
 * a BroadcastChannel (same origin only), so a user types them once per browser session, not per tab.
 */
export class Secrets {
  password = sessionStorage.getItem("chat.password") ?? "";
  token = sessionStorage.getItem("chat.token") ?? "";
  /** These were accepted by the server (a welcome came), so other tabs may have them. */
  accepted = false;
  #channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("chat.secrets") : null;

  constructor() {
    this.#channel?.addEventListener("message", (e) => {
      if (e.data === "ask" && this.accepted) {
        this.#channel?.postMessage({ password: this.password, token: this.token });
      }
    });
  }

  /** @param {Partial<Secret>} s */
  set(s) {
    this.password = s.password ?? this.password;
    this.token = s.token ?? this.token;
    this.accepted = false;
    sessionStorage.setItem("chat.password", this.password);
    sessionStorage.setItem("chat.token", this.token);
  }

  /** With none of its own, takes an open tab's accepted secrets if one answers in time. */
  /** @param {Mode} mode */
  async fromOtherTabs(mode) {
    const channel = this.#channel;
    if (mode.auth === "none" && !mode.password) return;
    if (this.password || this.token || !channel) return;
    /** @type {Secret | null} */
    const got = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), HANDOFF_WAIT_MS);
      channel.addEventListener("message", (e) => {
        if (typeof e.data?.password !== "string" || typeof e.data.token !== "string") return;
        clearTimeout(timer);
        resolve(e.data);
      });
      channel.postMessage("ask");
    });
    if (got) this.set(got);
  }
}

/** Whether `secrets` (and a name, where one is asked for) are all `mode` needs to try a hello. */
/** @param {Mode} mode @param {Secrets} secrets @param {string} name */
export const ready = (mode, secrets, name) =>
  (mode.auth === "token" ? !!secrets.token : !!name) && (!mode.password || !!secrets.password);

/** When a token's `exp` claim says it expires, in ms; 0 when it does not say. @param {string} token */
function expiresAt(token) {
  try {
    const b64 = (token.split(".")[1] ?? "").replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(b64)).exp;
    return Number.isFinite(exp) ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}

/** Words for the 4001 closes about an account's own password, by the reason's start. */
const ACCOUNT_REFUSALS = /** @type {[RegExp, string][]} */ ([
  [/^wrong password/, "That password is not right for this name."],
  [/^too many failed/, "Too many wrong passwords for this name. Try again in a few minutes."],
  [
    /^choose a password/,
    "This chat needs a password for a new name: choose one (8 or more characters).",
  ],
]);

/**
 * The words for a 4001 close, and which secret was refused (`account`: the name's own password). The server says only "token invalid
 * or expired" (at the hello, and when a token runs out on an open connection), so whether it
 * expired is read from the token's own `exp` claim.
 * @param {string} reason @param {Secrets} secrets
 * @returns {{ error: string, refused: keyof Secret | "account" | "" }}
 */
export function refusal(reason, secrets, now = Date.now()) {
  const account = ACCOUNT_REFUSALS.find(([re]) => re.test(reason));
  if (account) return { error: account[1], refused: "account" };
  if (reason === "signed out") return { error: "You were signed out.", refused: "" };
  if (/^password/.test(reason)) {
    const error = secrets.password ? "That password is not right." : "This chat needs a password.";
    return { error, refused: "password" };
  }
  if (!/^token/.test(reason)) return { error: `The server refused: ${reason}.`, refused: "" };
  const exp = expiresAt(secrets.token);
  const error = !secrets.token
    ? "This chat needs a sign-in token."
    : exp && exp <= now
    ? "Your sign-in token has expired. Paste a new one."
    : /name/.test(reason)
    ? "That sign-in token names a name the chat does not allow."
    : "That sign-in token was not accepted.";
  return { error, refused: "token" };
}

/** Intro lines by mode. */
const INTRO = {
  none: "Pick a name to start chatting.",
  password: "Pick a name and enter the chat's password.",
  token: "Paste the sign-in token you were given; it says who you are.",
};

/**
 * Shows the sign-in card with the fields `mode` asks for; `done` runs once they are filled in,
 * with the name and the account password typed (kept only until the welcome, never stored).
 * @param {Mode} mode @param {Secrets} secrets
 * @param {{ name: string, error?: string, refused?: keyof Secret | "account" | "" }} how
 * @param {(name: string, accountPassword: string) => void} done
 */
export function showLogin(mode, secrets, how, done) {
  /** @param {string} id */
  const input = (id) => byId(id, HTMLInputElement),
    el = (/** @type {string} */ id) => byId(id, HTMLElement);
  const name = input("login-name"), pw = input("login-password"), token = input("login-token");
  const error = el("login-error"), mine = input("login-account-password");
  const asks = {
    name: mode.auth !== "token",
    password: mode.password,
    token: mode.auth === "token",
  };
  el("login").hidden = false;
  el("app").hidden = true;
  el("login-intro").textContent = mode.password && mode.auth === "token"
    ? "Paste your sign-in token and enter the chat's password."
    : INTRO[mode.auth];
  el("login-name-row").hidden = !asks.name;
  el("login-password-row").hidden = !asks.password;
  el("login-token-row").hidden = !asks.token;
  // A token names its user, so only names sign in with the account's own password.
  el("login-account-row").hidden = !asks.name;
  el("login-account-hint").textContent = mode.registration === "password"
    ? "A new name needs one: 8 or more characters."
    : "Only if your name has one, or to sign in on another device.";
  mine.value = "";
  name.value = how.name;
  pw.value = how.refused === "password" ? "" : secrets.password;
  token.value = how.refused === "token" ? "" : secrets.token;
  error.textContent = how.error ?? "";
  /** The first field that is empty or was refused, with what to say about it. */
  const problem = () =>
    /** @type {[HTMLInputElement, string][]} */ ([
      [name, asks.name ? nameProblem(name.value.trim()) : ""],
      [pw, asks.password && !pw.value ? "Enter the chat's password." : ""],
      [token, asks.token && !token.value.trim() ? "Paste your sign-in token." : ""],
    ]).find(([, why]) => why);
  const field = how.refused ? { password: pw, token, account: mine }[how.refused] : null;
  (field ?? problem()?.[0] ?? name).focus();
  byId("login-form", HTMLFormElement).onsubmit = (e) => {
    e.preventDefault();
    const p = problem();
    for (const f of [name, pw, token]) f.setAttribute("aria-invalid", String(f === p?.[0]));
    error.textContent = p?.[1] ?? "";
    if (p) return p[0].focus();
    el("login").hidden = true;
    secrets.set({
      password: asks.password ? pw.value : "",
      token: asks.token ? token.value.trim() : "",
    });
    done(asks.name ? name.value.trim() : how.name, asks.name ? mine.value : "");
  };
}
