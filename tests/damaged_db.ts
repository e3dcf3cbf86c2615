/**
 * Builds SQLite history files and damages chosen pages of them, as a failing disk would, for the
 * tests of what the store and the server do with a damaged file.
 */
import { DatabaseSync } from "node:sqlite";
import { SqliteStore } from "../store/sqlite_store.ts";

/** Messages each test room gets: enough for dozens of b-tree leaf pages per room. */
export const ROOM_MESSAGES = 600;

/** The text of message `seq` of `room`: unique, so its bytes can be found in the file. */
export const textOf = (room: string, seq: number) =>
  `${room}-${String(seq).padStart(4, "0")}:${"x".repeat(300)}`;

/**
 * Writes a history file with rooms `a` and `b`, ROOM_MESSAGES each, sent long ago (so the server's
 * start, which reads only the last minutes, touches none of their rows), and closes it.
 */
export function writeHistory(path: string): void {
  const store = SqliteStore.open(path);
  try {
    for (const room of ["a", "b"]) {
      for (let seq = 1; seq <= ROOM_MESSAGES; seq += 100) {
        store.append(Array.from({ length: 100 }, (_, i) => ({
          room,
          from: "ann",
          text: textOf(room, seq + i),
          ts: 1_000_000 + seq + i,
        })));
      }
    }
  } finally {
    store.close();
  }
}

/** Overwrites page `page` (1-based) of the SQLite file at `path` with junk. */
export function damagePage(path: string, page: number, pageSize: number): void {
  const file = Deno.openSync(path, { read: true, write: true });
  try {
    file.seekSync((page - 1) * pageSize, Deno.SeekMode.Start);
    file.writeSync(new Uint8Array(pageSize).fill(0x5a));
  } finally {
    file.close();
  }
}

/** The leaf page of the messages table holding message `seq` of `room`, and the page size. */
export function leafOf(
  path: string,
  room: string,
  seq: number,
): { page: number; pageSize: number } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const pageSize = Number(db.prepare("PRAGMA page_size").get()?.page_size);
    const bytes = Deno.readFileSync(path);
    const at = indexOf(bytes, new TextEncoder().encode(textOf(room, seq)));
    const page = Math.floor(at / pageSize) + 1;
    const type = db.prepare("SELECT pagetype FROM dbstat WHERE name = 'messages' AND pageno = ?")
      .get(page)?.pagetype;
    if (at < 0 || type !== "leaf") throw new Error(`Cannot find the leaf of ${room} ${seq}`);
    return { page, pageSize };
  } finally {
    db.close();
  }
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
