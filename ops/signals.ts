/**
 * Catches the stop signals (SIGINT and SIGTERM; SIGINT and SIGBREAK on Windows) from the first
 * instant main.ts runs: main.ts imports this module before any other, so its listeners are added
 * before the rest of the server is even evaluated (issue 14, item 8).
 *
 * Why so early: a process started as a background job by a shell inherits SIGINT ignored, and
 * until a listener exists every SIGINT is lost (the server came up and kept running). With the
 * default disposition a signal before the listener kills the process, which is prompt too.
 *
 * Before `serving()` a signal runs `onStartSignal` and exits 0 at once: nobody has connected and
 * nothing was accepted, so there is nothing to drain, and a slow start (a Redis connect can take
 * seconds) must not delay the stop. After it, the first signal resolves `stopped` for a graceful
 * shutdown and a second exits at once with 130.
 */

/** The process's stop signals, as main.ts uses them. */
export interface StopSignals {
  /** Resolves at the first signal after `serving()`. */
  readonly stopped: Promise<void>;
  /** Run at a signal that arrives before `serving()`, just before the process exits 0. */
  onStartSignal: () => void;
  /** The server is listening: from now on a signal starts a graceful shutdown. */
  serving(): void;
}

function install(): StopSignals {
  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
  let serving = false;
  let stopping = false;
  const signals: StopSignals = {
    stopped,
    onStartSignal: () => {},
    serving: () => void (serving = true),
  };
  const onSignal = () => {
    if (!serving) {
      signals.onStartSignal();
      Deno.exit(0);
    }
    if (stopping) Deno.exit(130); // a second signal: exit at once
    stopping = true;
    stop();
  };
  const names: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  for (const name of names) Deno.addSignalListener(name, onSignal);
  return signals;
}

/** Installed when this module is evaluated, which main.ts makes the first thing it does. */
export const stopSignals: StopSignals = install();
