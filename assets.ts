/**
 * The browser client, embedded as text so `deno compile` ships it inside the binary: every file
 * under static/ by the URL path the server answers it on. One line per file; add new modules here.
 */
import appJs from "./static/app.js" with { type: "text" };
import composerJs from "./static/composer.js" with { type: "text" };
import connectionJs from "./static/connection.js" with { type: "text" };
import domJs from "./static/dom.js" with { type: "text" };
import faviconSvg from "./static/favicon.svg" with { type: "text" };
import indexHtml from "./static/index.html" with { type: "text" };
import linkifyJs from "./static/linkify.js" with { type: "text" };
import logJs from "./static/log.js" with { type: "text" };
import notifyJs from "./static/notify.js" with { type: "text" };
import outboxJs from "./static/outbox.js" with { type: "text" };
import renderJs from "./static/render.js" with { type: "text" };
import sidebarJs from "./static/sidebar.js" with { type: "text" };
import stateJs from "./static/state.js" with { type: "text" };
import storageJs from "./static/storage.js" with { type: "text" };
import styleCss from "./static/style.css" with { type: "text" };
import wireJs from "./static/wire.js" with { type: "text" };

/** One embedded file: its text and its Content-Type. */
export interface Asset {
  body: string;
  type: string;
}

const HTML = "text/html; charset=utf-8";
const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";
const SVG = "image/svg+xml";

/** Every static file by URL path; "/" and "/index.html" are the page. */
export const assets: ReadonlyMap<string, Asset> = new Map<string, Asset>([
  ["/", { body: indexHtml, type: HTML }],
  ["/index.html", { body: indexHtml, type: HTML }],
  ["/app.js", { body: appJs, type: JS }],
  ["/composer.js", { body: composerJs, type: JS }],
  ["/connection.js", { body: connectionJs, type: JS }],
  ["/dom.js", { body: domJs, type: JS }],
  ["/linkify.js", { body: linkifyJs, type: JS }],
  ["/log.js", { body: logJs, type: JS }],
  ["/notify.js", { body: notifyJs, type: JS }],
  ["/outbox.js", { body: outboxJs, type: JS }],
  ["/render.js", { body: renderJs, type: JS }],
  ["/sidebar.js", { body: sidebarJs, type: JS }],
  ["/state.js", { body: stateJs, type: JS }],
  ["/storage.js", { body: storageJs, type: JS }],
  ["/wire.js", { body: wireJs, type: JS }],
  ["/style.css", { body: styleCss, type: CSS }],
  ["/favicon.svg", { body: faviconSvg, type: SVG }],
]);
