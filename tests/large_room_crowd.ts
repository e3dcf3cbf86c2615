/**
 * A large room's crowd for tests/large_room_test.ts, run as its own process so the server's event
 * loop hides nothing: N members that hello and join ROOM all at once and record every message they
 * get (joined history and live), and what presence they hear. Commands on stdin, one JSON line
 * each on stdout:
 * - on start, when every member has `joined`: `{"event":"joined",...}` with the join times;
 * - `report`: `{"event":"report",...}`: per member, whether its seqs ran without gap or repeat;
 * - `reconnect PORT`: every member reconnects at once to PORT and joins with `since` = the last
 *   seq it got; then `{"event":"joined",...}` again.
 *
 * Usage: deno run --allow-net tests/large_room_crowd.ts PORT ROOM N PREFIX
 */
const [portText, room, countText, prefix] = Deno.args;
const count = Number(countText);
/** How long every member may take to join, in ms, before the crowd reports what it has. */
const JOIN_WAIT_MS = 60_000;

interface Member {
  name: string;
  socket: WebSocket | null;
  /** The session token from the latest welcome: the name is this member's account's. */
  token: string;
  /** Every seq received in ROOM, in order of arrival. */
  seqs: number[];
  joinedAt: number | null;
  joinedCount: number | null;
  joinedNames: number | null;
  lines: { join: number; leave: number; presence: number };
}

const members: Member[] = Array.from({ length: count }, (_, i) => ({
  name: `${prefix}${String(i).padStart(5, "0")}`,
  socket: null,
  token: "",
  seqs: [],
  joinedAt: null,
  joinedCount: null,
  joinedNames: null,
  lines: { join: 0, leave: 0, presence: 0 },
}));

function connect(m: Member, port: number, since: number | undefined, start: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = m.socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    m.joinedAt = null;
    socket.onopen = () =>
      socket.send(
        JSON.stringify({ type: "hello", name: m.name, ...(m.token ? { resume: m.token } : {}) }),
      );
    socket.onmessage = (e) => {
      for (const line of String(e.data).split("\n")) {
        const msg = JSON.parse(line);
        if (msg.type === "welcome") {
          m.token = msg.resume;
          socket.send(JSON.stringify({ type: "join", room, ...(since ? { since } : {}) }));
        } else if (msg.type === "joined") {
          m.joinedAt = performance.now() - start;
          m.joinedCount = msg.count;
          m.joinedNames = msg.members.length;
          for (const h of msg.history) m.seqs.push(h.seq);
          resolve();
        } else if (msg.type === "message" && msg.room === room) m.seqs.push(msg.seq);
        else if (msg.type === "join" || msg.type === "leave" || msg.type === "presence") {
          m.lines[msg.type as "join" | "leave" | "presence"]++;
        }
      }
    };
    socket.onclose = () => resolve();
    socket.onerror = () => {};
  });
}

async function joinAll(port: number, resume: boolean): Promise<void> {
  const start = performance.now();
  const all = Promise.all(
    members.map((m) => connect(m, port, resume ? m.seqs.at(-1) : undefined, start)),
  );
  await Promise.race([all, new Promise((r) => setTimeout(r, JOIN_WAIT_MS))]);
  const times = members.map((m) => m.joinedAt).filter((t) => t !== null).sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]);
  console.log(JSON.stringify({
    event: "joined",
    joined: times.length,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxNames: Math.max(...members.map((m) => m.joinedNames ?? 0)),
    counts: [...new Set(members.map((m) => m.joinedCount))].slice(0, 5),
    lastCount: members.at(-1)!.joinedCount,
  }));
}

function report(): void {
  let broken = 0;
  const examples: string[] = [];
  for (const m of members) {
    const ok = m.seqs.every((s, i) => i === 0 || s === m.seqs[i - 1] + 1);
    if (!ok) {
      broken++;
      if (examples.length < 3) examples.push(`${m.name}: ${m.seqs.join(",")}`);
    }
  }
  const lastSeqs = [...new Set(members.map((m) => m.seqs.at(-1) ?? 0))];
  const firstSeqs = [...new Set(members.map((m) => m.seqs[0] ?? 0))];
  console.log(JSON.stringify({
    event: "report",
    broken,
    examples,
    lastSeqs,
    firstSeqs,
    first: members[0].lines,
    open: members.filter((m) => m.socket?.readyState === WebSocket.OPEN).length,
  }));
}

await joinAll(Number(portText), false);
const decoder = new TextDecoder();
let buffered = "";
for await (const chunk of Deno.stdin.readable) {
  buffered += decoder.decode(chunk);
  let nl;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const command = buffered.slice(0, nl).trim();
    buffered = buffered.slice(nl + 1);
    if (command === "report") report();
    else if (command.startsWith("reconnect ")) await joinAll(Number(command.split(" ")[1]), true);
    else if (command === "exit") Deno.exit(0);
  }
}
