/**
 * Shows that makeTestCert's certificate serves HTTPS and WSS from Deno.serve, and every way a Deno
 * client can be told to trust it: an HttpClient for fetch and WebSocket in process, and `--cert` or
 * `DENO_CERT` for a child process. Without any of these the connection is refused.
 */
import { makeTestCert, type TestCert } from "./tls_test_cert.ts";

/** Serves "ok" over HTTPS and echoes WebSocket text frames, on a free port. */
function serveTls({ cert, key }: TestCert): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", cert, key, onListen() {} }, (request) => {
    if (request.headers.get("upgrade") !== "websocket") return new Response("ok");
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (e) => socket.send(`echo:${e.data}`);
    return response;
  });
}

/** Opens a WebSocket, sends "hi", and resolves with the reply or the error message. */
function echo(url: string, options?: { client: Deno.HttpClient }): Promise<string> {
  return new Promise((resolve) => {
    const socket = options ? new WebSocket(url, options) : new WebSocket(url);
    let result = "";
    socket.onopen = () => socket.send("hi");
    socket.onmessage = (e) => {
      result = String(e.data);
      socket.close();
    };
    socket.onerror = (e) => result = `error: ${(e as ErrorEvent).message}`;
    socket.onclose = () => resolve(result);
  });
}

/** The one-line child script: connect, send "hi", print the reply or the error. */
const CHILD = `const s = new WebSocket(Deno.args[0]);
s.onopen = () => s.send("hi");
s.onmessage = (e) => { console.log(e.data); s.close(); };
s.onerror = (e) => console.log("error: " + e.message);`;

async function childEcho(
  url: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", ...args, CHILD, url],
    env,
    stdin: "null",
  }).output();
  return new TextDecoder().decode(stdout).trim();
}

function assertEquals(actual: unknown, expected: unknown, what: string): void {
  if (actual !== expected) throw new Error(`${what}: expected ${expected}, got ${actual}`);
}

Deno.test("makeTestCert's certificate serves HTTPS and WSS that Deno clients can be told to trust", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "chat_tls_" });
  const cert = await makeTestCert(dir);
  const server = serveTls(cert);
  const port = server.addr.port;
  const client = Deno.createHttpClient({ caCerts: [cert.cert] });
  try {
    await t.step("fetch trusts it through Deno.createHttpClient({ caCerts })", async () => {
      for (const host of ["127.0.0.1", "localhost"]) {
        const response = await fetch(`https://${host}:${port}/`, { client });
        assertEquals(await response.text(), "ok", `fetch via ${host}`);
      }
    });

    await t.step("fetch without the client refuses it", async () => {
      let refused = false;
      await fetch(`https://127.0.0.1:${port}/`).then((r) => r.body?.cancel(), () => refused = true);
      assertEquals(refused, true, "refused");
    });

    await t.step(
      "an in-process WebSocket trusts it with new WebSocket(url, { client })",
      async () => {
        assertEquals(await echo(`wss://127.0.0.1:${port}/`, { client }), "echo:hi", "reply");
      },
    );

    await t.step("an in-process WebSocket without the client refuses it", async () => {
      const reply = await echo(`wss://127.0.0.1:${port}/`);
      if (!reply.includes("UnknownIssuer")) throw new Error(`expected UnknownIssuer, got ${reply}`);
    });

    await t.step("a child process trusts it with --cert or DENO_CERT", async () => {
      const url = `wss://127.0.0.1:${port}/`;
      assertEquals(await childEcho(url, ["--cert", cert.certFile]), "echo:hi", "--cert");
      assertEquals(await childEcho(url, [], { DENO_CERT: cert.certFile }), "echo:hi", "DENO_CERT");
    });
  } finally {
    client.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
