/**
 * The stats page's content, rendered on the server from a StatsSnapshot: the process
 * line, one card per listener (its upstream table and key-share donut) and the recent
 * changes. Every value from the snapshot goes through `esc` (names and details come
 * from admins and health checks); the page's CSP forbids style attributes, so widths
 * and colours are SVG attributes and classes.
 */
import type { ChangeStats, ListenerStats, StatsSnapshot, UpstreamStats } from './stats.js';

/** Upstream colours, by position; html.ts makes the classes c0.. from it. */
export const PALETTE = ['#3454d1', '#11a39a', '#e8793a', '#8b5cf6', '#d6336c', '#2f9e44', '#f59f00', '#1c7ed6', '#845ef7', '#e03131', '#0ca678', '#5c6b7a'];
const OUTCOMES = ['ok', 'refused', 'no_upstream', 'connect_failed', 'bad_request', 'timeout'] as const;
const VIAS = ['hash', 'learned', 'p2c'] as const;
const BAR_WIDTH = 150;

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in an element's content and in a double-quoted attribute. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

function num(n: number): string {
  return n.toLocaleString('en-US');
}

function bytes(n: number | null): string {
  if (n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function duration(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** HH:MM:SS UTC of an ISO time (the footer says the page's times are UTC). */
export function clock(iso: string): string {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toISOString().slice(11, 19);
}

function chip(label: string, value: string, bad: boolean): string {
  return `<span class="chip${bad ? ' bad' : ''}">${esc(label)} <b>${esc(value)}</b></span>`;
}

function td(text: string, cls?: string, title?: string): string {
  return `<td${cls ? ` class="${cls}"` : ''}${title ? ` title="${esc(title)}"` : ''}>${esc(text)}</td>`;
}

export function renderProcess(p: StatsSnapshot['process']): string {
  const items: [string, string | number][] = [['pid', p.pid], ['uptime', duration(p.uptimeS)], ['node', p.node], ['rss', bytes(p.rssBytes)], ['heap', bytes(p.heapUsedBytes)]];
  return items.map(([label, value]) => `<span>${label} <b>${esc(value)}</b></span>`).join('');
}

function donut(upstreams: readonly UpstreamStats[]): string {
  let offset = 0;
  let onTable = 0;
  const segments = upstreams.map((u, i) => {
    if (u.share <= 0) return '';
    onTable++;
    const len = u.share * 100;
    const seg =
      `<circle cx="21" cy="21" r="15.915" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="6" ` +
      `stroke-dasharray="${len} ${100 - len}" stroke-dashoffset="${25 - offset}"><title>${esc(u.name)}: ${pct(u.share)} of keys</title></circle>`;
    offset += len;
    return seg;
  });
  return (
    `<div class="donut"><svg viewBox="0 0 42 42" role="img" aria-label="share of keys by upstream">` +
    `<circle cx="21" cy="21" r="15.915" fill="none" stroke="#eceef2" stroke-width="6"></circle>${segments.join('')}` +
    `<text x="21" y="21" text-anchor="middle" font-size="7" font-weight="650" fill="${onTable ? '#1c2230' : '#c53030'}">${onTable}</text>` +
    `<text x="21" y="27" text-anchor="middle" font-size="3.4" fill="#6b7280">${onTable === 1 ? 'upstream' : 'upstreams'}</text>` +
    `</svg><div class="cap">key share</div></div>`
  );
}

function upstreamRow(u: UpstreamStats, i: number, sample: number, weightOnTable: number): string {
  const colour = PALETTE[i % PALETTE.length]!;
  const fair = u.state === 'up' && weightOnTable > 0 ? u.weight / weightOnTable : null;
  const fill = Math.min(1, u.share) * BAR_WIDTH;
  const bar =
    `<svg class="bar" viewBox="0 0 ${BAR_WIDTH} 15" width="${BAR_WIDTH}" height="15" overflow="visible" aria-hidden="true">` +
    `<rect class="track" x="0" y="3" width="${BAR_WIDTH}" height="9" rx="4.5"></rect>` +
    (fill > 0 ? `<rect x="0" y="3" width="${fill}" height="9" rx="4.5" fill="${colour}"></rect>` : '') +
    (fair === null ? '' : `<rect class="fair" x="${fair * BAR_WIDTH - 1}" y="0" width="2" height="15" rx="1"></rect>`) +
    `</svg>`;
  const shareTitle = `${num(Math.round(u.share * sample))} of ${num(sample)} sample keys${fair === null ? '' : `; by weight: ${pct(fair)}`}`;
  return (
    `<tr class="st-${esc(u.state)}" data-upstream="${esc(u.name)}">` +
    `<td class="name"><span class="swatch c${i % PALETTE.length}"></span>${esc(u.name)}</td>` +
    td(u.address, 'addr') +
    `<td class="state"><span class="pill ${esc(u.state)}">${esc(u.state)}</span></td>` +
    td(String(u.weight), 'num') +
    td(num(u.active), u.active > 0 ? 'num hot' : 'num') +
    td(num(u.total), 'num') +
    td(bytes(u.fromClient), 'num', u.fromClient === null ? '' : `${num(u.fromClient)} bytes sent by clients`) +
    td(bytes(u.toClient), 'num', u.toClient === null ? '' : `${num(u.toClient)} bytes received by clients`) +
    `<td title="${esc(shareTitle)}"><div class="share">${bar}<span class="pct">${pct(u.share)}</span></div></td>` +
    `</tr>`
  );
}

function renderListener(l: ListenerStats, sample: number): string {
  const algo = `${l.hash}${l.hash === 'ring' ? ` (${l.vnodes} vnodes)` : ''}${l.balanceFactor > 1 ? `, bounded c=${l.balanceFactor}` : ''}`;
  const chips = [chip('active', num(l.active), false)];
  for (const o of OUTCOMES) if (o === 'ok' || l.outcomes[o] > 0) chips.push(chip(o.replace('_', ' '), num(l.outcomes[o]), o !== 'ok'));
  for (const v of VIAS) if (l.decisions[v] > 0) chips.push(chip(`via ${v}`, num(l.decisions[v]), false));
  chips.push(chip('from clients', bytes(l.fromClient), false), chip('to clients', bytes(l.toClient), false));
  let weightOnTable = 0;
  for (const u of l.upstreams) if (u.state === 'up') weightOnTable += u.weight;
  const rows = l.upstreams.length === 0 ? '<tr><td class="empty" colspan="9">no upstreams</td></tr>' : l.upstreams.map((u, i) => upstreamRow(u, i, sample, weightOnTable)).join('\n');
  const heads = ['Upstream', 'Address', 'State', 'Weight:num', 'Active:num', 'Total:num', 'From clients:num', 'To clients:num', 'Key share'].map((h) => {
    const [text, cls] = h.split(':');
    return `<th${cls ? ` class="${cls}"` : ''}>${text}</th>`;
  });
  return (
    `<section class="card listener" data-listener="${esc(l.name)}">\n` +
    `<div class="card-head"><h2>${esc(l.name)}</h2><span class="meta"><code>${esc(l.address)}</code> \u00b7 ${esc(l.mode)} \u00b7 ${esc(algo)}</span>` +
    `<div class="chips">${chips.join('')}</div></div>\n` +
    `<div class="body">${donut(l.upstreams)}<div class="scroll"><table class="upstreams">\n` +
    `<thead><tr>${heads.join('')}</tr></thead>\n<tbody>\n${rows}\n</tbody></table></div></div>\n</section>`
  );
}

export function renderListeners(stats: StatsSnapshot): string {
  return stats.listeners.map((l) => renderListener(l, stats.keySample)).join('\n');
}

export function renderChanges(changes: readonly ChangeStats[]): string {
  if (changes.length === 0) return '<tr><td class="empty" colspan="5">no changes since start</td></tr>';
  return changes
    .map(
      (c) =>
        `<tr>${td(clock(c.at), 'at', c.at)}${td(c.listener)}${td(c.upstream, 'name')}` +
        `<td><span class="tag ${esc(c.change)}">${esc(c.change)}</span></td>${td(c.detail ?? '')}</tr>`,
    )
    .join('\n');
}
