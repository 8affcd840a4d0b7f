/**
 * The stats page (GET /): one static HTML document with inline CSS and JS and no
 * external assets. It renders nothing on the server: its script polls stats.json
 * every 2 s and builds the tables with DOM calls (textContent, createElement), so
 * no name, address or detail is ever parsed as HTML.
 *
 * The admin token: a browser cannot send an Authorization header when it opens a
 * page, so `/` and `/stats.json` (only those) also take `?token=`. The document is
 * the same for everyone and never contains the token: the script reads it from its
 * own address and sends it on each poll as `Authorization: Bearer`, so it does not
 * spread into further URLs (proxy logs, history). `Referrer-Policy: no-referrer`
 * keeps the address from leaking through links, and a CSP that allows only these
 * exact inline blocks (by hash) and same-origin fetches backs up the DOM-only
 * rendering.
 */
import { createHash } from 'node:crypto';

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
.share { display: flex; align-items: center; gap: 8px; }
.bar { position: relative; width: 150px; height: 9px; border-radius: 5px; background: #eceef2; flex: 0 0 auto; }
.bar .fill { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 5px; }
.bar .fair { position: absolute; top: -3px; bottom: -3px; width: 2px; margin-left: -1px; background: #1c2230; opacity: .5; border-radius: 1px; }
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
noscript { display: block; padding: 20px; }
@media (max-width: 760px) { .body { flex-direction: column; } .donut { align-self: center; } }
`;

const SCRIPT = `
(function () {
  'use strict';
  var REFRESH_MS = 2000;
  var PALETTE = ['#3454d1', '#11a39a', '#e8793a', '#8b5cf6', '#d6336c', '#2f9e44', '#f59f00', '#1c7ed6', '#845ef7', '#e03131', '#0ca678', '#5c6b7a'];
  var SVGNS = 'http://www.w3.org/2000/svg';
  var OUTCOMES = ['ok', 'refused', 'no_upstream', 'connect_failed', 'bad_request', 'timeout'];
  var VIAS = ['hash', 'learned', 'p2c'];
  // The token is read from this page's own address and sent as a header, never
  // written into the document.
  var token = new URLSearchParams(location.search).get('token');
  var statusEl = document.getElementById('status');
  var statusText = document.getElementById('status-text');
  var procEl = document.getElementById('proc');
  var listenersEl = document.getElementById('listeners');
  var changesEl = document.getElementById('changes');

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function td(text, cls, title) {
    var e = el('td', cls, text);
    if (title) e.title = title;
    return e;
  }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function bytes(n) {
    if (n === null || n === undefined) return '';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + units[i];
  }
  function pct(x) { return (x * 100).toFixed(1) + '%'; }
  function duration(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + m + 'm';
    if (m > 0) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }
  function clock(iso) {
    var t = new Date(iso);
    return isNaN(t.getTime()) ? String(iso) : t.toLocaleTimeString('en-GB', { hour12: false });
  }
  function chip(label, value, bad) {
    var c = el('span', 'chip' + (bad ? ' bad' : ''));
    c.appendChild(document.createTextNode(label + ' '));
    c.appendChild(el('b', null, typeof value === 'number' ? num(value) : value));
    return c;
  }
  function setStatus(ok, text) {
    statusEl.className = 'status ' + (ok ? 'live' : 'error');
    statusText.textContent = text;
  }

  function renderProcess(p) {
    var items = [['pid', p.pid], ['uptime', duration(p.uptimeS)], ['node', p.node], ['rss', bytes(p.rssBytes)], ['heap', bytes(p.heapUsedBytes)]];
    procEl.replaceChildren.apply(procEl, items.map(function (it) {
      var s = el('span', null, it[0] + ' ');
      s.appendChild(el('b', null, it[1]));
      return s;
    }));
  }

  function donut(upstreams, colours) {
    var wrap = el('div', 'donut');
    var g = svg('svg', { viewBox: '0 0 42 42', role: 'img', 'aria-label': 'share of keys by upstream' });
    g.appendChild(svg('circle', { cx: 21, cy: 21, r: 15.915, fill: 'none', stroke: '#eceef2', 'stroke-width': 6 }));
    var offset = 0, onTable = 0;
    upstreams.forEach(function (u, i) {
      if (u.share <= 0) return;
      onTable++;
      var len = u.share * 100;
      var seg = svg('circle', {
        cx: 21, cy: 21, r: 15.915, fill: 'none', stroke: colours[i], 'stroke-width': 6,
        'stroke-dasharray': len + ' ' + (100 - len), 'stroke-dashoffset': 25 - offset,
      });
      var title = svg('title', {});
      title.textContent = u.name + ': ' + pct(u.share) + ' of keys';
      seg.appendChild(title);
      g.appendChild(seg);
      offset += len;
    });
    var big = svg('text', { x: 21, y: 21, 'text-anchor': 'middle', 'font-size': 7, 'font-weight': 650, fill: onTable ? '#1c2230' : '#c53030' });
    big.textContent = String(onTable);
    var small = svg('text', { x: 21, y: 27, 'text-anchor': 'middle', 'font-size': 3.4, fill: '#6b7280' });
    small.textContent = onTable === 1 ? 'upstream' : 'upstreams';
    g.appendChild(big);
    g.appendChild(small);
    wrap.appendChild(g);
    wrap.appendChild(el('div', 'cap', 'key share'));
    return wrap;
  }

  function renderListener(l, sample) {
    var card = el('section', 'card listener');
    card.dataset.listener = l.name;
    var head = el('div', 'card-head');
    head.appendChild(el('h2', null, l.name));
    var meta = el('span', 'meta');
    meta.appendChild(el('code', null, l.address));
    var algo = l.hash + (l.hash === 'ring' ? ' (' + l.vnodes + ' vnodes)' : '') + (l.balanceFactor > 1 ? ', bounded c=' + l.balanceFactor : '');
    meta.appendChild(document.createTextNode(' \\u00b7 ' + l.mode + ' \\u00b7 ' + algo));
    head.appendChild(meta);
    var chips = el('div', 'chips');
    chips.appendChild(chip('active', l.active, false));
    OUTCOMES.forEach(function (o) {
      if (o === 'ok' || l.outcomes[o] > 0) chips.appendChild(chip(o.replace('_', ' '), l.outcomes[o], o !== 'ok'));
    });
    VIAS.forEach(function (v) { if (l.decisions[v] > 0) chips.appendChild(chip('via ' + v, l.decisions[v], false)); });
    chips.appendChild(chip('from clients', bytes(l.fromClient), false));
    chips.appendChild(chip('to clients', bytes(l.toClient), false));
    head.appendChild(chips);
    card.appendChild(head);

    var colours = l.upstreams.map(function (_, i) { return PALETTE[i % PALETTE.length]; });
    var weightOnTable = 0;
    l.upstreams.forEach(function (u) { if (u.state === 'up') weightOnTable += u.weight; });

    var body = el('div', 'body');
    body.appendChild(donut(l.upstreams, colours));
    var scroll = el('div', 'scroll');
    var table = el('table', 'upstreams');
    var thead = el('thead');
    var hr = el('tr');
    [['Upstream'], ['Address'], ['State'], ['Weight', 'num'], ['Active', 'num'], ['Total', 'num'], ['From clients', 'num'], ['To clients', 'num'], ['Key share']].forEach(function (h) {
      hr.appendChild(el('th', h[1], h[0]));
    });
    thead.appendChild(hr);
    table.appendChild(thead);
    var tbody = el('tbody');
    if (l.upstreams.length === 0) {
      var tr0 = el('tr');
      var cell = el('td', 'empty', 'no upstreams');
      cell.colSpan = 9;
      tr0.appendChild(cell);
      tbody.appendChild(tr0);
    }
    l.upstreams.forEach(function (u, i) {
      var tr = el('tr', 'st-' + u.state);
      tr.dataset.upstream = u.name;
      var name = td(null, 'name');
      var sw = el('span', 'swatch');
      sw.style.background = colours[i];
      name.appendChild(sw);
      name.appendChild(document.createTextNode(u.name));
      tr.appendChild(name);
      tr.appendChild(td(u.address, 'addr'));
      var state = td(null, 'state');
      state.appendChild(el('span', 'pill ' + u.state, u.state));
      tr.appendChild(state);
      tr.appendChild(td(u.weight, 'num'));
      tr.appendChild(td(num(u.active), u.active > 0 ? 'num hot' : 'num'));
      tr.appendChild(td(num(u.total), 'num'));
      tr.appendChild(td(bytes(u.fromClient), 'num', u.fromClient === null ? '' : num(u.fromClient) + ' bytes sent by clients'));
      tr.appendChild(td(bytes(u.toClient), 'num', u.toClient === null ? '' : num(u.toClient) + ' bytes received by clients'));
      var shareCell = td(null);
      var share = el('div', 'share');
      var bar = el('div', 'bar');
      var fill = el('div', 'fill');
      fill.style.width = Math.min(100, u.share * 100) + '%';
      fill.style.background = colours[i];
      bar.appendChild(fill);
      if (u.state === 'up' && weightOnTable > 0) {
        var fair = el('div', 'fair');
        fair.style.left = (u.weight / weightOnTable * 100) + '%';
        bar.appendChild(fair);
      }
      share.appendChild(bar);
      share.appendChild(el('span', 'pct', pct(u.share)));
      shareCell.appendChild(share);
      shareCell.title = num(Math.round(u.share * sample)) + ' of ' + num(sample) + ' sample keys' +
        (u.state === 'up' && weightOnTable > 0 ? '; by weight: ' + pct(u.weight / weightOnTable) : '');
      tr.appendChild(shareCell);
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    scroll.appendChild(table);
    body.appendChild(scroll);
    card.appendChild(body);
    return card;
  }

  function renderChanges(changes) {
    if (changes.length === 0) {
      var tr0 = el('tr');
      var cell = el('td', 'empty', 'no changes since start');
      cell.colSpan = 5;
      tr0.appendChild(cell);
      changesEl.replaceChildren(tr0);
      return;
    }
    changesEl.replaceChildren.apply(changesEl, changes.map(function (c) {
      var tr = el('tr');
      tr.appendChild(td(clock(c.at), 'at', c.at));
      tr.appendChild(td(c.listener));
      tr.appendChild(td(c.upstream, 'name'));
      var kind = td(null);
      kind.appendChild(el('span', 'tag ' + c.change, c.change));
      tr.appendChild(kind);
      tr.appendChild(td(c.detail || ''));
      return tr;
    }));
  }

  function render(data) {
    renderProcess(data.process);
    listenersEl.replaceChildren.apply(listenersEl, data.listeners.map(function (l) { return renderListener(l, data.keySample); }));
    renderChanges(data.changes);
  }

  function refresh() {
    var headers = { accept: 'application/json' };
    if (token) headers.authorization = 'Bearer ' + token;
    fetch('stats.json', { headers: headers, cache: 'no-store', credentials: 'omit' })
      .then(function (res) {
        if (res.status === 401) throw new Error('401: open this page as /?token=...');
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (data) {
        render(data);
        setStatus(true, 'live \\u00b7 ' + clock(data.generatedAt));
      })
      .catch(function (err) { setStatus(false, 'stale \\u00b7 ' + (err && err.message ? err.message : String(err))); })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }
  refresh();
})();
`;

const HTML = `<!doctype html>
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
<div class="proc" id="proc"></div>
<div class="status" id="status"><span class="dot"></span><span id="status-text">loading\u2026</span></div>
</header>
<main>
<noscript>This page needs JavaScript; its data is at <a href="stats.json">stats.json</a>.</noscript>
<div id="listeners"></div>
<section class="card">
<div class="card-head"><h2>Recent changes</h2><span class="meta">membership and health, newest first</span></div>
<div class="changes-wrap"><table class="changes">
<thead><tr><th>Time</th><th>Listener</th><th>Upstream</th><th>Change</th><th>Detail</th></tr></thead>
<tbody id="changes"></tbody>
</table></div>
</section>
</main>
<footer>Refreshes every 2 s from stats.json. Key share: 10,000 sample keys mapped through the current table; the tick marks the share by weight. Bytes count closed connections. Prometheus metrics: /metrics.</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The stats page, byte for byte the same on every request. */
export const STATS_PAGE_HTML = HTML;

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
