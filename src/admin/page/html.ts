/**
 * The stats page (GET /): one HTML document with inline CSS and JS and no external
 * assets, rendered on the server (render.ts) so curl, text browsers and people with
 * scripts off see the upstreams. The script only refreshes it: every 2 s it fetches
 * the page again and swaps in the fresh parts, parsed by DOMParser (an inert
 * document: nothing in it runs), so no value is ever assembled into HTML in the
 * browser.
 *
 * The admin token: a browser cannot send an Authorization header when it opens a
 * page, so `/` and `/stats.json` (only those) also take `?token=`. The document never
 * contains the token: the script reads it from its own address and sends it on each
 * refresh as `Authorization: Bearer`, so it does not spread into further URLs (proxy
 * logs, history). `Referrer-Policy: no-referrer` keeps the address from leaking
 * through links, and a CSP that allows only these exact inline blocks (by hash), no
 * style attributes and same-origin fetches backs up the escaping.
 */
import { createHash } from 'node:crypto';
import { PALETTE, clock, renderChanges, renderListeners, renderProcess } from './render.js';
import type { StatsSnapshot } from './stats.js';
const CSS = `
:root {
  --bg: #f5f6f8; --card: #fff; --ink: #1c2230; --muted: #6b7280; --line: #e2e5ea; --soft: #f0f2f5;
  --up: #17864a; --up-bg: #e6f5ec; --drain: #9a6400; --drain-bg: #fff4d6; --down: #c53030; --down-bg: #fde8e8;
  --gone: #6b7280; --gone-bg: #eef0f3; --accent: #3454d1;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: center; gap: 18px; padding: 9px 20px; background: #1c2230; color: #fff; flex-wrap: wrap; }
header h1 { margin: 0; font-size: 16px; font-weight: 650; letter-spacing: .01em; }
header h1 span { font-weight: 400; color: #9aa4b2; }
.proc { display: flex; gap: 14px; flex-wrap: wrap; color: #aeb7c4; font-size: 12px; }
.proc b { color: #e6e9ee; font-weight: 600; }
.status { margin-left: auto; display: flex; align-items: center; gap: 7px; font-size: 12px; color: #cfd5de; }
.dot { width: 8px; height: 8px; border-radius: 50%; background: #9ca3af; }
.status.live .dot { background: #34d399; box-shadow: 0 0 0 3px rgba(52, 211, 153, .18); }
.status.error .dot { background: #f87171; box-shadow: 0 0 0 3px rgba(248, 113, 113, .2); }
.status.error { color: #fecaca; }
main { padding: 16px 20px 8px; display: grid; gap: 14px; max-width: 1440px; }
#listeners { display: grid; gap: 14px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
.card-head { display: flex; align-items: baseline; gap: 10px; padding: 9px 14px; border-bottom: 1px solid var(--line); flex-wrap: wrap; background: #fbfbfc; }
.card-head h2 { margin: 0; font-size: 14px; font-weight: 650; }
.meta { color: var(--muted); font-size: 12px; }
.meta code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--ink); }
.chips { margin-left: auto; display: flex; gap: 5px; flex-wrap: wrap; }
.chip { font-size: 11px; padding: 1px 7px; border-radius: 9px; background: var(--soft); color: #4b5563; white-space: nowrap; font-variant-numeric: tabular-nums; }
.chip b { color: var(--ink); font-weight: 600; }
.chip.bad { background: var(--down-bg); color: var(--down); }
.chip.bad b { color: var(--down); }
.body { display: flex; gap: 18px; padding: 10px 14px 12px; align-items: flex-start; }
.donut { flex: 0 0 124px; text-align: center; }
.donut svg { width: 116px; height: 116px; display: block; margin: 0 auto; }
.donut .cap { font-size: 11px; color: var(--muted); margin-top: 2px; }
.scroll { overflow-x: auto; flex: 1 1 auto; min-width: 0; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th { text-align: left; font-size: 10.5px; font-weight: 600; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td { padding: 4px 8px; border-bottom: 1px solid #f1f2f5; white-space: nowrap; }
tbody tr:last-child td { border-bottom: 0; }
tbody tr:hover td { background: rgba(52, 84, 209, .04); }
.num { text-align: right; }
td.name { font-weight: 600; }
td.addr { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; color: #374151; }
td.hot { font-weight: 650; }
tr.st-up td:first-child { box-shadow: inset 3px 0 var(--up); }
tr.st-draining td { background: #fffaeb; }
tr.st-draining td:first-child { box-shadow: inset 3px 0 #e3a008; }
tr.st-down td { background: #fff5f5; }
tr.st-down td:first-child { box-shadow: inset 3px 0 var(--down); }
tr.st-removed td { color: var(--gone); }
tr.st-removed td:first-child { box-shadow: inset 3px 0 #c4c8cf; }
.pill { display: inline-block; min-width: 66px; text-align: center; font-size: 10.5px; font-weight: 700; letter-spacing: .05em; text-transform: uppercase; padding: 1px 8px; border-radius: 9px; }
.pill.up { background: var(--up-bg); color: var(--up); }
.pill.draining { background: var(--drain-bg); color: var(--drain); }
.pill.down { background: var(--down-bg); color: var(--down); }
.pill.removed { background: var(--gone-bg); color: var(--gone); }
.swatch { display: inline-block; width: 9px; height: 9px; border-radius: 2px; margin-right: 7px; vertical-align: 0; }
${PALETTE.map((colour, i) => `.c${i} { background: ${colour}; }`).join('\n')}
.share { display: flex; align-items: center; gap: 8px; }
.bar { display: block; flex: 0 0 auto; }
.bar .track { fill: #eceef2; }
.bar .fair { fill: #1c2230; opacity: .5; }
.share .pct { min-width: 48px; text-align: right; }
.empty { color: var(--muted); padding: 10px 8px; }
.changes td.at { color: var(--muted); }
.changes td:last-child { width: 100%; white-space: normal; color: #4b5563; }
.tag { display: inline-block; font-size: 10.5px; font-weight: 700; letter-spacing: .04em; text-transform: uppercase; padding: 0 7px; border-radius: 9px; background: var(--soft); color: #4b5563; }
.tag.up, .tag.undrained { background: var(--up-bg); color: var(--up); }
.tag.down { background: var(--down-bg); color: var(--down); }
.tag.draining { background: var(--drain-bg); color: var(--drain); }
.tag.added { background: #e8edff; color: var(--accent); }
.tag.changed { background: #f1e9fb; color: #7c3aed; }
.tag.removed { background: var(--gone-bg); color: var(--gone); }
.changes-wrap { max-height: 320px; overflow: auto; }
footer { padding: 4px 20px 18px; color: var(--muted); font-size: 11.5px; max-width: 1440px; }
footer a { color: var(--accent); }
@media (max-width: 760px) { .body { flex-direction: column; } .donut { align-self: center; } }
`;

const SCRIPT = `
(function () {
  'use strict';
  var REFRESH_MS = 2000;
  // Rendered on the server; a refresh replaces these elements whole.
  var PARTS = ['proc', 'listeners', 'changes'];
  // The token is read from this page's own address and sent as a header, never
  // written into the document.
  var token = new URLSearchParams(location.search).get('token');
  var statusEl = document.getElementById('status');
  var statusText = document.getElementById('status-text');

  function setStatus(ok, text) {
    statusEl.className = 'status ' + (ok ? 'live' : 'error');
    statusText.textContent = text;
  }

  function refresh() {
    var headers = { accept: 'text/html' };
    if (token) headers.authorization = 'Bearer ' + token;
    fetch(location.pathname, { headers: headers, cache: 'no-store', credentials: 'omit' })
      .then(function (res) {
        if (res.status === 401) throw new Error('401: open this page as /?token=...');
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, 'text/html');
        PARTS.forEach(function (id) {
          var next = fresh.getElementById(id);
          var now = document.getElementById(id);
          if (!next || !now) throw new Error('unexpected page');
          now.replaceWith(document.adoptNode(next));
        });
        setStatus(true, 'live \\u00b7 ' + fresh.getElementById('generated').textContent);
      })
      .catch(function (err) { setStatus(false, 'stale \\u00b7 ' + (err && err.message ? err.message : String(err))); })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }
  setTimeout(refresh, REFRESH_MS);
})();
`;

/** The stats page for `stats`: the same shell every time, the content escaped. */
export function statsPage(stats: StatsSnapshot): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>tether stats</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>tether <span>stats</span></h1>
<div class="proc" id="proc">${renderProcess(stats.process)}</div>
<div class="status" id="status"><span class="dot"></span><span id="status-text">as of <span id="generated">${clock(stats.generatedAt)} UTC</span></span></div>
</header>
<main>
<div id="listeners">
${renderListeners(stats)}
</div>
<section class="card">
<div class="card-head"><h2>Recent changes</h2><span class="meta">membership and health, newest first</span></div>
<div class="changes-wrap"><table class="changes">
<thead><tr><th>Time</th><th>Listener</th><th>Upstream</th><th>Change</th><th>Detail</th></tr></thead>
<tbody id="changes">
${renderChanges(stats.changes)}
</tbody>
</table></div>
</section>
</main>
<footer>Refreshes every 2 s (with JavaScript; without, reload it); the same data as JSON: stats.json. Times are UTC. Key share: ${stats.keySample.toLocaleString('en-US')} sample keys mapped through the current table; the tick marks the share by weight. Prometheus metrics: /metrics.</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** Allows exactly the page's own inline style and script, and fetches to its origin. */
export const STATS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${cspHash(SCRIPT)}`,
  `style-src ${cspHash(CSS)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
