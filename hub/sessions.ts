/**
 * Names on this instance: who holds each name, the resume token that takes it back, and the
 * reservation that keeps it for its holder after a disconnect. With a cluster, a name new to this
 * instance is first claimed on every instance, and the claim ends at the disconnect (another
 * instance cannot check this one's tokens); the reservation still holds here.
 *
 * The hub asks for a name with `take`; this module grants it (sets the client's name and key and
 * calls back) or closes the client with the reason it cannot have it. It is the one owner of names.
 */
import type { Client } from "../client.ts";
import type { Cluster } from "./cluster.ts";
import { CloseCode, nameFold, nameKey } from "../protocol/protocol.ts";
import { timingSafeEqual } from "../auth/auth.ts";

/** How long a disconnected name stays reserved for its token holder, in ms. */
export const NAME_RESERVATION_MS = 60_000;

/** The close reason (with 4009) when another instance holds the name. */
export const NAME_HELD_ELSEWHERE = "name taken on another instance";

/** A name and whoever holds it: a client now, or its token holder until `releaseAt`. */
export interface Session {
  name: string;
  /**
   * The resume token that takes the name back, over a half-open old socket or a reservation. A new
   * one is made at every takeover, so a leaked token stops working once its holder comes back.
   */
  token: string;
  client: Client | null;
  /** When a disconnected session frees its name, in ms. */
  releaseAt: number;
}

/** What a client offers to prove it may take a held name. */
export interface NameProof {
  /** The resume token from an earlier welcome. */
  resume?: string;
  /**
   * True when the credentials themselves prove the identity (a verified token): proof for the name
   * they name in any case or width, never for a lookalike that shares its key.
   */
  verified: boolean;
}

/** Options for {@linkcode Sessions}. */
export interface SessionsOptions {
  /** Other instances whose names must not collide with ours. @default none */
  cluster?: Cluster | null;
  /** @default Date.now */
  now?: () => number;
  /** Makes a resume token. @default 256 random bits, base64url */
  makeToken?: () => string;
  /** The cluster could not be asked; the client was told to try again. */
  failed?: (error: unknown) => void;
}

/** Grants names, keeps them for their token holders after a disconnect, and frees them. */
export class Sessions {
  #sessions = new Map<string, Session>();
  /** Name keys being claimed from the cluster: a second local hello for one waits its turn. */
  #claiming = new Set<string>();
  #cluster: Cluster | null;
  #now: () => number;
  #makeToken: () => string;
  #failed: (error: unknown) => void;

  constructor(options: SessionsOptions = {}) {
    this.#cluster = options.cluster ?? null;
    this.#now = options.now ?? Date.now;
    this.#makeToken = options.makeToken ?? randomToken;
    this.#failed = options.failed ?? (() => {});
  }

  /**
   * Gives `client` the name and calls `granted` with its session (at once, or after the cluster
   * agreed), or closes the client: `name_taken` without the proof for a held name, `unavailable`
   * when the cluster cannot be asked. A proven holder replaces the name's current client.
   */
  take(
    client: Client,
    name: string,
    proof: NameProof,
    granted: (session: Session) => void,
  ): void {
    const key = nameKey(name);
    const existing = this.#sessions.get(key);
    // A verified token proves the identity as well as the resume token does, but only for the
    // name it names: a token for a lookalike of a held name (Cyrillic "аdmin" for "admin") is
    // someone else's, who shares the key and must not take the name over.
    const proven = existing !== undefined &&
      ((proof.verified && nameFold(name) === nameFold(existing.name)) ||
        (proof.resume !== undefined && timingSafeEqual(proof.resume, existing.token)));
    if (existing !== undefined && (existing.client !== null || this.#now() < existing.releaseAt)) {
      if (!proven) return client.close(CloseCode.nameTaken, "name taken", "name_taken");
      // The token holder takes the name over at once; the old socket may be half-open.
      if (existing.client !== null) {
        // Detached before it is closed: its disconnect must not free the name (cluster-wide
        // too) that its successor takes at once.
        const replaced = existing.client;
        existing.client = null;
        replaced.close(CloseCode.replaced, "replaced", "replaced");
      } else if (this.#cluster !== null) {
        // The cluster-wide claim ended with the disconnect; take it again before resuming.
        return void this.#claim(client, name, key, granted, existing);
      }
      existing.name = name;
      existing.token = this.#makeToken();
      return this.#attach(client, key, existing, granted);
    }
    if (this.#cluster !== null) return void this.#claim(client, name, key, granted);
    const session = { name, token: this.#makeToken(), client: null, releaseAt: 0 };
    this.#sessions.set(key, session);
    this.#attach(client, key, session, granted);
  }

  /** In a cluster, a name new to this instance must first be free on every instance. */
  async #claim(
    client: Client,
    name: string,
    key: string,
    granted: (session: Session) => void,
    resumed?: Session,
  ): Promise<void> {
    if (this.#claiming.has(key)) {
      return client.close(CloseCode.nameTaken, "name taken", "name_taken");
    }
    this.#claiming.add(key);
    let ok = false;
    try {
      ok = await this.#cluster!.claimName(key, name);
    } catch (e) {
      this.#failed(e);
      this.#claiming.delete(key);
      return client.close(CloseCode.tryAgain, "cluster unavailable, try again", "unavailable");
    }
    this.#claiming.delete(key);
    if (!ok) {
      // Said apart from a local refusal: the holder may be this user's own old connection on an
      // instance that has not noticed it is gone, so a client with a token may retry a while.
      return client.close(CloseCode.nameTaken, NAME_HELD_ELSEWHERE, "name_taken");
    }
    const holder = this.#sessions.get(key)?.client ?? null;
    if (client.closed || holder !== null) {
      // Nobody here holds the name (a reservation does not: its claim ended at the disconnect),
      // so the claim just made goes back.
      if (holder === null) void this.#cluster!.releaseName(key);
      if (!client.closed) client.close(CloseCode.nameTaken, "name taken", "name_taken");
      return;
    }
    const session: Session = resumed ??
      { name, token: this.#makeToken(), client: null, releaseAt: 0 };
    session.name = name;
    // A takeover of a reservation: the token that proved it is spent, as on one instance.
    if (resumed !== undefined) session.token = this.#makeToken();
    this.#sessions.set(key, session);
    this.#attach(client, key, session, granted);
  }

  #attach(
    client: Client,
    key: string,
    session: Session,
    granted: (session: Session) => void,
  ): void {
    session.client = client;
    client.name = session.name;
    client.key = key;
    granted(session);
  }

  /** Names held or reserved now. */
  get size(): number {
    return this.#sessions.size;
  }

  /** The client holding the name with this key now, or null. */
  clientOf(key: string): Client | null {
    return this.#sessions.get(key)?.client ?? null;
  }

  /**
   * The client is gone: its name stays reserved for the token holder for NAME_RESERVATION_MS.
   * Returns the cluster-wide release when there is one to wait for; nothing when the client did
   * not hold its name (a replaced client's session belongs to its successor). The cluster-wide
   * release waits for `after` (what the client's last commands still tell the other instances),
   * so no line about this user goes out once someone elsewhere may hold the name.
   */
  release(client: Client, after?: Promise<void>): Promise<void> | undefined {
    if (client.name === null) return;
    const session = this.#sessions.get(client.key);
    if (session === undefined || session.client !== client) return;
    session.client = null;
    session.releaseAt = this.#now() + NAME_RESERVATION_MS;
    const cluster = this.#cluster;
    if (cluster === null) return;
    const free = () => cluster.releaseName(client.key);
    return after === undefined ? free() : after.then(free, free);
  }

  /**
   * Another instance took these names while this one was cut off long enough to be presumed
   * dead: their clients here are closed with `name_taken` and the reservations dropped.
   */
  lost(keys: string[]): void {
    for (const key of keys) {
      const client = this.#sessions.get(key)?.client;
      if (client != null) client.close(CloseCode.nameTaken, "name taken", "name_taken");
      this.#sessions.delete(key);
    }
  }

  /** Frees the names whose reservation has ended. */
  sweep(): void {
    const now = this.#now();
    for (const [key, s] of this.#sessions) {
      if (s.client === null && s.releaseAt <= now) this.#sessions.delete(key);
    }
  }
}

/** 256 random bits, base64url. */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}
