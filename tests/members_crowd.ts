/**
 * A room's crowd for the browser test of a large member list (tests/browser_members_server_test.ts),
 * in its own process so the server and the browser test share no event loop with it: N members
 * named PREFIX00000… that hello and join ROOM, a few at a time, and read whatever comes. It prints
 * `{"event":"ready","joined":N}` once all are in; then, on stdin, `leave K` closes the last K still
 * open (printing `{"event":"left","open":…}`), and `exit` ends it.
 *
 * Usage: deno run --allow-net tests/members_crowd.ts PORT ROOM N PREFIX
 */
const [portText, room, countText, prefix] = Deno.args;
const port = Number(portText), count = Number(countText);
/** Members joining at once: enough to be quick, few enough not to look like a storm. */
const JOINING_AT_ONCE = 100;

const sockets: WebSocket[] = [];

/** Opens one member and resolves once it is in ROOM (or its socket closed). */
function member(name: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    sockets.push(socket);
    socket.onopen = () => socket.send(JSON.stringify({ type: "hello", name }));
    socket.onmessage = (e) => {
      for (const line of String(e.data).split("\n")) {
        if (line.startsWith('{"type":"welcome"')) {
          socket.send(JSON.stringify({ type: "join", room }));
        } else if (line.startsWith('{"type":"joined"')) resolve();
      }
    };
    socket.onclose = () => resolve();
    socket.onerror = () => {};
  });
}

const names = Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(5, "0")}`);
for (let i = 0; i < names.length; i += JOINING_AT_ONCE) {
  await Promise.all(names.slice(i, i + JOINING_AT_ONCE).map(member));
}
const open = () => sockets.filter((s) => s.readyState === WebSocket.OPEN);
console.log(JSON.stringify({ event: "ready", joined: open().length }));

const decoder = new TextDecoder();
let buffered = "";
for await (const chunk of Deno.stdin.readable) {
  buffered += decoder.decode(chunk);
  let nl;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const [command, arg] = buffered.slice(0, nl).trim().split(" ");
    buffered = buffered.slice(nl + 1);
    if (command === "leave") {
      const going = open().slice(-Number(arg));
      await Promise.all(going.map((s) =>
        new Promise((r) => {
          s.addEventListener("close", r, { once: true });
          s.close();
        })
      ));
      console.log(JSON.stringify({ event: "left", open: open().length }));
    } else if (command === "exit") Deno.exit(0);
  }
}
