/**
 * The child side of the bench's request/reply lines (bench/processes.ts LineChild): reads one JSON
 * request per line from stdin, answers each on stdout with its `id`, exits when stdin closes or
 * after its lifetime, so a child never outlives a vanished orchestrator for long.
 */

/**
 * Serves requests with `handle` until stdin ends. `name` prefixes the lifetime message. Requests
 * are handled concurrently; a rejection becomes `{ id, ok: false, error }`.
 */
export async function serveLines<Req extends { id: number }>(
  name: string,
  lifetimeS: number,
  handle: (req: Req) => Promise<unknown>,
): Promise<void> {
  setTimeout(() => {
    console.error(`${name}: max lifetime reached, exiting`);
    Deno.exit(2);
  }, lifetimeS * 1000);
  const encoder = new TextEncoder();
  let writing = Promise.resolve();
  const reply = (r: unknown) => {
    const bytes = encoder.encode(JSON.stringify(r) + "\n");
    writing = writing.then(async () => {
      let off = 0;
      while (off < bytes.length) off += await Deno.stdout.write(bytes.subarray(off));
    });
  };
  let pending = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line) continue;
      const req = JSON.parse(line) as Req; // trusted: written by the bench's orchestrator
      handle(req).then(
        reply,
        (e) => reply({ id: req.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
      );
    }
  }
  // The orchestrator went away: stop everything.
  Deno.exit(0);
}
