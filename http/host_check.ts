/**
 * Which names the server answers to: the Host check that stops DNS rebinding, and the Origin check
 * that stops other sites' pages from opening a socket, both drawn from one set of addresses the
 * server is really reachable as.
 *
 * A DNS-rebinding page is served from the attacker's name (`evil.example`) whose address is later
 * switched to 127.0.0.1. The browser then sends `Host: evil.example:PORT` and, being same-origin,
 * `Origin: http://evil.example:PORT`, so "Origin equals Host" lets it in. What the attacker cannot
 * choose is the name: it can never be one the operator listed, an IP literal (no DNS involved) or
 * `localhost` (which browsers resolve to loopback themselves). So the server accepts only those:
 *
 * - the bound address with the bound port (`127.0.0.1:8000`), or, bound to every interface
 *   (`0.0.0.0`, `::`), any IP literal with the bound port;
 * - on a loopback or wildcard listener, `localhost`, `*.localhost`, `127.0.0.1` and `[::1]` with
 *   the bound port;
 * - a name given as `--host` (e.g. `--host localhost`) with the bound port;
 * - `--allow-host NAME` on any port, `--allow-host NAME:PORT` on that port, and the host of
 *   `--public-url` (its port when the URL names one).
 *
 * @example
 * ```ts
 * const hosts = new HostPolicy({ scheme: "http", hostname: "127.0.0.1", port: 8000 });
 * hosts.allowsHost("localhost:8000"); // true
 * hosts.allowsHost("evil.example:8000"); // false
 * hosts.allowsOrigin("http://127.0.0.1:8000"); // true
 * hosts.allowsOrigin("https://127.0.0.1:8000"); // false: this listener is plain http
 * ```
 */

/** Options for {@linkcode HostPolicy}. */
export interface HostPolicyOptions {
  /** What the listener speaks: https with --cert/--key. */
  scheme: "http" | "https";
  /** The bound address as Deno reports it (`server.addr.hostname`). */
  hostname: string;
  /** The bound port (the real one when --port 0 was given). */
  port: number;
  /** `--host` as the operator typed it, when it is a name rather than an address. @default hostname */
  configuredHost?: string;
  /** `--allow-host` entries, lower-cased: `NAME` or `NAME:PORT`. @default [] */
  allowHosts?: readonly string[];
  /** `--public-url`'s origin (`https://chat.example.com`), or null. @default null */
  publicUrl?: string | null;
}

/** A Host value split into a canonical hostname and the port it names, or null when malformed. */
interface Authority {
  /** Lower-cased; IPv4 in dotted decimal, IPv6 in brackets, as the URL parser writes them. */
  hostname: string;
  /** The port written after the name, or null when none was. */
  port: number | null;
}

/** What a Host header or an allow-host entry may look like: a name or IP, then maybe a port. */
const AUTHORITY = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d{1,5}))?$/i;

/** Splits `host[:port]`; the URL parser canonicalises the name (`127.1` → `127.0.0.1`). */
export function parseAuthority(text: string): Authority | null {
  const m = AUTHORITY.exec(text);
  if (m === null) return null;
  const port = m[2] === undefined ? null : Number(m[2]);
  if (port !== null && port > 65535) return null;
  try {
    return { hostname: new URL(`http://${m[1]}/`).hostname, port };
  } catch {
    return null;
  }
}

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;
const isIpLiteral = (hostname: string) => IPV4.test(hostname) || hostname.startsWith("[");
const isLoopback = (hostname: string) =>
  /^127\./.test(hostname) || hostname === "[::1]" || hostname === "localhost";
const isLocalhostName = (hostname: string) =>
  hostname === "localhost" || hostname.endsWith(".localhost");

/** The names and addresses this server answers to; see the module comment for the rule. */
export class HostPolicy {
  readonly #scheme: "http" | "https";
  readonly #port: number;
  /** Hostnames accepted with the bound port. */
  readonly #bound = new Set<string>();
  readonly #anyIp: boolean;
  readonly #localNames: boolean;
  /** `--allow-host` names: null port means any port. */
  readonly #listed: Authority[] = [];
  /** The listed names plus `--public-url`'s host: names a Host may carry besides the bound address. */
  readonly #named: Authority[] = [];
  /** `--public-url`'s exact origin. */
  readonly #publicOrigin: string | null;

  constructor(options: HostPolicyOptions) {
    this.#scheme = options.scheme;
    this.#port = options.port;
    const bound = parseAuthority(
      options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname,
    );
    const wildcard = bound === null || bound.hostname === "0.0.0.0" || bound.hostname === "[::]";
    this.#anyIp = wildcard;
    if (bound !== null && !wildcard) this.#bound.add(bound.hostname);
    const configured = options.configuredHost === undefined
      ? null
      : parseAuthority(options.configuredHost);
    if (configured !== null && !isIpLiteral(configured.hostname)) {
      this.#bound.add(configured.hostname);
    }
    this.#localNames = wildcard || [...this.#bound].some(isLoopback);
    if (this.#localNames) { for (const h of ["127.0.0.1", "[::1]"]) this.#bound.add(h); }
    for (const entry of options.allowHosts ?? []) {
      const a = parseAuthority(entry);
      if (a !== null) this.#listed.push(a);
    }
    this.#publicOrigin = options.publicUrl ?? null;
    if (this.#publicOrigin !== null) {
      const url = new URL(this.#publicOrigin);
      this.#named.push({ hostname: url.hostname, port: url.port === "" ? null : Number(url.port) });
    }
    this.#named.push(...this.#listed);
  }

  /** True when `host` (a Host header or an origin's host) names this server. */
  allowsHost(host: string): boolean {
    const a = parseAuthority(host);
    if (a === null) return false;
    if (this.#named.some((l) => l.hostname === a.hostname && (l.port ?? a.port) === a.port)) {
      return true;
    }
    return this.#ownAddress(a);
  }

  /** The bound address, localhost names or (on every interface) an IP literal, on the bound port. */
  #ownAddress(a: Authority): boolean {
    const port = a.port ?? (this.#scheme === "https" ? 443 : 80);
    if (port !== this.#port) return false;
    if (this.#bound.has(a.hostname)) return true;
    if (this.#localNames && isLocalhostName(a.hostname)) return true;
    return this.#anyIp && isIpLiteral(a.hostname);
  }

  /**
   * True when a browser page at `origin` is one this server served: the listener's own scheme on
   * a name it answers to, the public URL, or an `--allow-host` name over http or https (a proxy in
   * front may add TLS, so the browser's scheme need not be the listener's).
   */
  allowsOrigin(origin: string): boolean {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return false;
    if (url.origin === this.#publicOrigin) return true;
    const a = parseAuthority(url.host);
    if (a === null) return false;
    // An origin omits its scheme's default port; the listed entries compare the port written.
    const written = url.port === "" ? null : Number(url.port);
    if (this.#listed.some((l) => l.hostname === a.hostname && (l.port ?? written) === written)) {
      return true;
    }
    return url.protocol === `${this.#scheme}:` && this.#ownAddress(a);
  }
}
