/** A hub on fake sockets with a manual flush scheduler, drain timers and an injected clock, for tests. */
import { Client } from "../client.ts";
import { fakeClientOptions, FakeSocket } from "./fakes.ts";
import { Hub } from "../hub.ts";
import { MemoryStore, type Store } from "../store/store.ts";

export interface Rig {
  hub: Hub;
  clock: { now: number };
  /** Runs scheduled flushes until none is left. */
  flush(): void;
  /** Advances the clock by `ms`, running the drain timers due meanwhile (and the flushes after). */
  tick(ms: number): void;
  connect(
    name: string,
    opts?: { sendQueueBytes?: number; resume?: string; connection?: string },
  ): { client: Client; socket: FakeSocket };
  done(): Promise<void>;
}

export function rig(
  store: Store = new MemoryStore(),
  options: { roomWindowBytes?: number } = {},
): Rig {
  const clock = { now: 1_000_000 };
  const queue: (() => void)[] = [];
  let timers: { at: number; fn: () => void }[] = [];
  const hub = new Hub({
    store,
    maxRoomsPerClient: 3,
    welcomeLimits: {},
    version: "test",
    now: () => clock.now,
    schedule: (fn) => queue.push(fn),
    ...options,
    timer: (fn, delayMs) => {
      const t = { at: clock.now + delayMs, fn };
      timers.push(t);
      return () => timers = timers.filter((x) => x !== t);
    },
  });
  const clients: Client[] = [];
  return {
    hub,
    clock,
    flush() {
      while (queue.length > 0) queue.shift()!();
    },
    tick(ms) {
      const end = clock.now + ms;
      for (;;) {
        const due = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (due === undefined) break;
        timers = timers.filter((t) => t !== due);
        clock.now = Math.max(clock.now, due.at);
        due.fn();
        while (queue.length > 0) queue.shift()!();
      }
      clock.now = end;
    },
    connect(name, opts = {}) {
      const socket = new FakeSocket();
      const client = new Client(
        socket,
        hub,
        fakeClientOptions({
          sendQueueBytes: opts.sendQueueBytes ?? 1 << 20,
          now: () => clock.now,
        }),
      );
      hub.add(client);
      clients.push(client);
      client.receive(
        JSON.stringify({
          type: "hello",
          name,
          ...(opts.resume ? { resume: opts.resume } : {}),
          ...(opts.connection ? { connection: opts.connection } : {}),
        }),
      );
      return { client, socket };
    },
    async done() {
      await hub.shutdown();
      for (const c of clients) c.close(1000, "test over", "client");
    },
  };
}

/** A store that delegates to a MemoryStore, with some methods replaced. */
export function wrapStore(inner: MemoryStore, overrides: Partial<Store>): Store {
  return {
    append: (b) => inner.append(b),
    read: (room, range) => inner.read(room, range),
    bounds: (room) => inner.bounds(room),
    recentWithCid: (ts) => inner.recentWithCid(ts),
    prune: (now) => inner.prune(now),
    close: () => inner.close(),
    ...overrides,
  };
}

export const say = (c: Client, text: string, cid?: string) =>
  c.receive(JSON.stringify({ type: "say", room: "general", text, ...(cid ? { cid } : {}) }));
export const join = (c: Client, room = "general", since?: number) =>
  c.receive(JSON.stringify({ type: "join", room, ...(since === undefined ? {} : { since }) }));
/** Lets pending microtasks (async joins) finish. */
export const settle = () => new Promise((r) => setTimeout(r, 0));
