#!/usr/bin/env node
/**
 * The side-by-side benchmark as an SVG chart, hand-written (no dependencies), so
 * GitHub shows it in markdown: one panel per table column, one horizontal bar per
 * balancer, each bar its median ÷ HAProxy's median. A grey line marks 1.0× (as good
 * as HAProxy), a dashed red line tether's target for that column (targets.mjs). When
 * no column has a HAProxy median the bars are ratios to direct and no target is drawn.
 *
 * run.mjs writes results/NAME.svg next to NAME.json; to redraw one by hand:
 *
 *   node native-bench/chart.mjs [native-bench/results/NAME.json]   (writes NAME.svg)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BALANCER_LABELS, BALANCER_ORDER, columnHeading, fmt, sideBySideColumns } from './format.mjs';
import { TARGETS, targetRatio, targetText } from './targets.mjs';

const WIDTH = 780;
const LABEL_RIGHT = 156; // balancer names end here (right-aligned)
const BAR_LEFT = 164;
const BAR_WIDTH = 440;
const ROW = 18;
const BAR_HEIGHT = 12;
const PANEL_HEAD = 24;
const PANEL_GAP = 14;
/** Bars longer than this many times the baseline are cut, with their value written out. */
const MAX_RATIO = 4;
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const COLORS = { direct: '#9d9d9d', tether: '#f58518', 'tether-base': '#ffbf79', 'tether-w2': '#e45756', 'tether-node': '#eeca3b', 'tether-w2-node': '#9e2a2b', naive: '#b279a2', haproxy: '#4c78a8', nginx: '#54a24b' };
const TARGET_COLOR = '#d62728';

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
const esc = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
const num = (v) => (Math.round(v * 10) / 10).toString();
const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);

/** `halo`: a white outline under the letters, so a line behind them does not cross them. */
function text(x, y, content, { size = 11, anchor = 'start', weight = 'normal', fill = '#222', halo = false } = {}) {
  const bold = weight === 'normal' ? '' : ` font-weight="${weight}"`;
  const outline = halo ? ' stroke="#fff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"' : '';
  return `<text x="${num(x)}" y="${num(y)}" font-size="${size}" text-anchor="${anchor}" fill="${fill}"${bold}${outline}>${esc(content)}</text>`;
}

function vline(x, top, bottom, color, dashed) {
  const dash = dashed ? ' stroke-dasharray="4 3"' : '';
  return `<line x1="${num(x)}" y1="${top - 2}" x2="${num(x)}" y2="${bottom + 2}" stroke="${color}" stroke-width="1.5"${dash}/>`;
}

/**
 * The SVG for a results object (what run.mjs writes to results/NAME.json: `summary`,
 * and for the caption `date`, `machine`, `options`). Returns the document as a string.
 */
export function renderChart(results) {
  const columns = sideBySideColumns(results?.summary);
  const present = new Set(columns.flatMap(([, col]) => Object.keys(col.byBalancer)));
  const balancers = BALANCER_ORDER.filter((b) => present.has(b));
  const hasHaproxy = columns.some(([, col]) => isNumber(col.byBalancer.haproxy?.median));
  const baseline = hasHaproxy ? 'haproxy' : 'direct';
  const ratioKey = hasHaproxy ? 'vsHaproxy' : 'vsDirect';
  const baseName = BALANCER_LABELS[baseline];

  const body = [];
  let y = 0;
  const title = `tether side by side: each balancer's median ÷ ${baseName}'s`;
  body.push(text(16, (y += 26), title, { size: 16, weight: 'bold' }));
  const o = results?.options ?? {};
  const m = results?.machine;
  const caption = [
    results?.date ? String(results.date).slice(0, 10) : null,
    m ? `${m.cpus} × ${m.cpuModel}, Node ${m.node}` : null,
    o.rounds ? `medians of ${o.rounds} round${o.rounds > 1 ? 's' : ''} × ${o.duration} s` : null,
  ].filter(Boolean);
  if (caption.length) body.push(text(16, (y += 18), caption.join(' · '), { fill: '#555' }));
  body.push(
    text(
      16,
      (y += 16),
      `Grey line: 1.0× (as good as ${baseName}). ↑ columns: a longer bar is better; ↓ columns: a shorter bar is better.` +
        (hasHaproxy ? ' Dashed red: tether\'s target.' : ''),
      { fill: '#555' },
    ),
  );
  y += 12;
  if (columns.length === 0) body.push(text(16, (y += 20), 'No side-by-side results in this run.', { size: 13 }));

  for (const [id, col] of columns) {
    const ratios = balancers.map((b) => col.byBalancer[b]?.[ratioKey]).filter(isNumber);
    const target = hasHaproxy && TARGETS[id] ? TARGETS[id] : null;
    const tRatio = target ? targetRatio(target, col.byBalancer.haproxy?.median) : null;
    const axisMax = Math.min(MAX_RATIO, Math.max(1.2, ...ratios, tRatio ?? 0) * 1.08);
    const x = (ratio) => BAR_LEFT + (Math.min(ratio, axisMax) / axisMax) * BAR_WIDTH;

    const head = y + 16;
    body.push(`<g class="panel" data-column="${esc(id)}">`);
    const hint = col.better === 'higher' ? 'higher is better' : 'lower is better';
    body.push(
      `<text x="16" y="${head}" font-size="13" fill="#222"><tspan font-weight="bold">${esc(columnHeading(col))}</tspan>` +
        `<tspan font-size="11" fill="#555">  ${hint}</tspan></text>`,
    );
    if (target) body.push(text(BAR_LEFT + BAR_WIDTH, head, `target ${targetText(target, col.better)}`, { anchor: 'end', fill: TARGET_COLOR }));
    const top = y + PANEL_HEAD;
    const bottom = top + balancers.length * ROW;
    // Bars, then the lines over them, then the words over both.
    const bars = [];
    const words = [];
    balancers.forEach((b, i) => {
      const rowY = top + i * ROW;
      const cell = col.byBalancer[b];
      const isTether = b.startsWith('tether');
      words.push(text(LABEL_RIGHT, rowY + 11, BALANCER_LABELS[b], { anchor: 'end', weight: isTether ? 'bold' : 'normal' }));
      const ratio = cell?.[ratioKey];
      const median = cell?.median;
      if (!isNumber(ratio)) {
        words.push(text(BAR_LEFT + 4, rowY + 11, isNumber(median) ? fmt(median) : 'not measured', { fill: '#777', halo: true }));
        return;
      }
      const end = x(ratio);
      bars.push(
        `<rect x="${BAR_LEFT}" y="${num(rowY + (ROW - BAR_HEIGHT) / 2)}" width="${num(Math.max(1, end - BAR_LEFT))}" height="${BAR_HEIGHT}" fill="${COLORS[b]}"/>`,
      );
      const cut = ratio > axisMax;
      if (cut) bars.push(`<path d="M${num(end - 6)} ${rowY + 3}l6 6-6 6" fill="none" stroke="#fff" stroke-width="2"/>`);
      words.push(text(end + 5, rowY + 11, `${ratio.toFixed(2)}×  (${fmt(median)})`, { weight: isTether ? 'bold' : 'normal', halo: true }));
    });
    body.push(...bars);
    // A target of exactly 1.0× is the grey line itself, drawn red and dashed instead.
    const targetOnOne = tRatio !== null && Math.abs(tRatio - 1) < 1e-9;
    body.push(vline(x(1), top, bottom, targetOnOne ? TARGET_COLOR : '#666', targetOnOne));
    if (tRatio !== null && !targetOnOne && tRatio <= axisMax) body.push(vline(x(tRatio), top, bottom, TARGET_COLOR, true));
    body.push(...words, '</g>');
    y = bottom + PANEL_GAP;
  }

  const height = Math.ceil(y + 6);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="${FONT}">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** `node chart.mjs [results/NAME.json]`: writes results/NAME.svg beside it. */
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const input = resolve(process.argv[2] ?? fileURLToPath(new URL('./results/latest.json', import.meta.url)));
  if (!input.endsWith('.json')) {
    process.stderr.write(`chart: give a results .json file, got ${input}\n`);
    process.exit(2);
  }
  let results;
  try {
    results = JSON.parse(readFileSync(input, 'utf8'));
  } catch (err) {
    process.stderr.write(`chart: cannot read ${input}: ${err.message}\n`);
    process.exit(2);
  }
  const output = input.replace(/\.json$/, '.svg');
  writeFileSync(output, renderChart(results));
  process.stdout.write(`chart: wrote ${output}\n`);
}
