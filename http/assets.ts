/**
 * The browser client, embedded as text so `deno compile` ships it inside the binary: every file
 * under static/ by the URL path the server answers it on. One line per file; add new modules here.
 * Scripts and styles are served with their whole-line comments blanked (the JSDoc that types and
 * explains the source): a smaller page, and the same line numbers as static/ in a stack trace.
 */
import appJs from "../static/app.js" with { type: "text" };
import composerJs from "../static/composer.js" with { type: "text" };
import connectionJs from "../static/connection.js" with { type: "text" };
import domJs from "../static/dom.js" with { type: "text" };
import faviconSvg from "../static/favicon.svg" with { type: "text" };
import indexHtml from "../static/index.html" with { type: "text" };
import linkifyJs from "../static/linkify.js" with { type: "text" };
import logJs from "../static/log.js" with { type: "text" };
import notifyJs from "../static/notify.js" with { type: "text" };
import outboxJs from "../static/outbox.js" with { type: "text" };
import renderJs from "../static/render.js" with { type: "text" };
import sidebarJs from "../static/sidebar.js" with { type: "text" };
import signinJs from "../static/signin.js" with { type: "text" };
import accountJs from "../static/account.js" with { type: "text" };
import stateJs from "../static/state.js" with { type: "text" };
import storageJs from "../static/storage.js" with { type: "text" };
import styleCss from "../static/style.css" with { type: "text" };
import wireJs from "../static/wire.js" with { type: "text" };

/** One embedded file: its text and its Content-Type. */
export interface Asset {
  body: string;
  type: string;
}

/**
 * Blanks every line that is only comment: `//` lines and `/* … *\/` blocks that start a line and
 * end one. A comment sharing a line with code stays (it may be a type cast); the line count stays.
 * For our own files, which have no multi-line strings.
 */
export function blankCommentLines(source: string): string {
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i].trimStart();
    if (text.startsWith("//")) {
      lines[i] = "";
    } else if (text.startsWith("/*")) {
      // Search for the close past the opening "/*" on its own line, so "/*/" does not close.
      const from = (line: number) => line === i ? lines[i].indexOf("/*") + 2 : 0;
      let end = i;
      while (end < lines.length && !lines[end].includes("*/", from(end))) end++;
      if (end === lines.length) break; // unterminated: leave the rest alone
      const after = lines[end].slice(lines[end].indexOf("*/", from(end)) + 2);
      if (after.trim() === "") lines.fill("", i, end + 1);
      i = end;
    }
  }
  return lines.join("\n");
}

const HTML = "text/html; charset=utf-8";
const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";
const SVG = "image/svg+xml";

/** Every static file by URL path; "/" and "/index.html" are the page. */
export const assets: ReadonlyMap<string, Asset> = new Map<string, Asset>([
  ["/", { body: indexHtml, type: HTML }],
  ["/index.html", { body: indexHtml, type: HTML }],
  ["/app.js", { body: blankCommentLines(appJs), type: JS }],
  ["/composer.js", { body: blankCommentLines(composerJs), type: JS }],
  ["/connection.js", { body: blankCommentLines(connectionJs), type: JS }],
  ["/dom.js", { body: blankCommentLines(domJs), type: JS }],
  ["/linkify.js", { body: blankCommentLines(linkifyJs), type: JS }],
  ["/log.js", { body: blankCommentLines(logJs), type: JS }],
  ["/notify.js", { body: blankCommentLines(notifyJs), type: JS }],
  ["/outbox.js", { body: blankCommentLines(outboxJs), type: JS }],
  ["/render.js", { body: blankCommentLines(renderJs), type: JS }],
  ["/sidebar.js", { body: blankCommentLines(sidebarJs), type: JS }],
  ["/signin.js", { body: blankCommentLines(signinJs), type: JS }],
  ["/account.js", { body: blankCommentLines(accountJs), type: JS }],
  ["/state.js", { body: blankCommentLines(stateJs), type: JS }],
  ["/storage.js", { body: blankCommentLines(storageJs), type: JS }],
  ["/wire.js", { body: blankCommentLines(wireJs), type: JS }],
  ["/style.css", { body: blankCommentLines(styleCss), type: CSS }],
  ["/favicon.svg", { body: faviconSvg, type: SVG }],
]);
