import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { STATS_PAGE_CSP, statsPage } from '../../src/admin/page/html.js';
import type { StatsSnapshot } from '../../src/admin/page/stats.js';
import { connectAndGreet, closed, waitFor } from '../helpers/clients.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { freePort, startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';
import { listenLoopback } from '../helpers/listen.js';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const SCREENSHOT = `${ARTIFACTS}stats-page.png`;

let browser: Browser;
let tether: RunningTether | null = null;
let upstreams: TestUpstream[] = [];
const sockets: net.Socket[] = [];

beforeAll(async () => {
  // test/setup/browser.ts provides it (the Chromium that an npm package ships).
  const { executablePath, env } = inject('browser');
  browser = await chromium.launch({
    executablePath,
    env: { ...process.env, ...env },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await tether?.close();
  tether = null;
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

/** A page that fails the test on any script error or CSP violation it reports. */
async function openPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  return { page, problems };
}

interface Row {
  name: string;
  address: string;
  state: string;
  cells: string[];
}

/** The upstream rows of every listener, in page order. */
function rows(page: Page): Promise<Row[]> {
  return page.$$eval('section.listener tr[data-upstream]', (trs) =>
    trs.map((tr) => {
      const cells = [...tr.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim());
      return { name: tr.getAttribute('data-upstream') ?? '', address: cells[1] ?? '', state: tr.querySelector('.pill')?.textContent ?? '', cells };
    }),
  );
}

/** In-page predicate (typed without the DOM lib; the page's CSP forbids string predicates). */
function textIs([selector, want]: [string, string]): boolean {
  const doc = (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document;
  return doc.querySelector(selector)?.textContent === want;
}

function waitForText(page: Page, selector: string, want: string): Promise<unknown> {
  return page.waitForFunction(textIs, [selector, want] as [string, string], { timeout: 10_000 });
}

/** Resolves once the upstream's state pill reads `state`. */
function waitForState(page: Page, upstream: string, state: string): Promise<unknown> {
  return waitForText(page, `tr[data-upstream="${upstream}"] .pill`, state);
}

function stateOf(page: Page, upstream: string): Promise<string | null> {
  return page.$eval(`tr[data-upstream="${upstream}"] .pill`, (e) => e.textContent).catch(() => null);
}

describe('stats page', () => {
  it('lists every upstream, shows a drain within one refresh, and looks right', async () => {
    upstreams = await startUpstreams(['alpha', 'bravo', 'charlie']);
    const deadPort = await freePort();
    tether = await startTether({
      TETHER_UPSTREAMS: `${upstreamList(upstreams)},delta=127.0.0.1:${deadPort}*2`,
      TETHER_HEALTH: 'tcp',
      TETHER_HEALTH_INTERVAL_MS: '200',
      TETHER_HEALTH_FALL: '2',
    });
    const t = tether;
    await waitFor(async () => ((await adminCall(t.admin, 'GET', '/upstreams/delta')).body as { state: string }).state === 'down', 5_000, 'delta to go down');

    // Some traffic: closed connections with bytes, and a few still open.
    for (let i = 0; i < 12; i++) {
      const g = await connectAndGreet(t.port, `127.0.3.${i + 2}`);
      g.socket.write('x'.repeat(100 * (i + 1)));
      if (i % 4 === 0) {
        sockets.push(g.socket);
        continue;
      }
      g.socket.end();
      await closed(g.socket);
    }

    // A plain GET (curl, a text browser, a probe) sees it all: rendered on the server.
    // (Once the table without delta is in use: it is built in a worker thread.)
    const plainGet = async (): Promise<{ html: string; rows: RegExpExecArray[] }> => {
      const res = await fetch(`${t.admin}/`);
      expect(res.status).toBe(200);
      const html = await res.text();
      return { html, rows: [...html.matchAll(/<tr class="st-(\w+)" data-upstream="([^"]+)">.*?<td class="addr">([^<]*)<\/td>.*?<span class="pct">([^<]*)<\/span>/g)] };
    };
    await waitFor(async () => (await plainGet()).rows[3]?.[4] === '0.0%', 10_000, "delta's share to be 0");
    const { html, rows: plainRows } = await plainGet();
    expect(plainRows.map((m) => [m[2], m[3], m[1]])).toEqual([
      ['alpha', upstreams[0]!.address, 'up'],
      ['bravo', upstreams[1]!.address, 'up'],
      ['charlie', upstreams[2]!.address, 'up'],
      ['delta', `127.0.0.1:${deadPort}`, 'down'],
    ]);
    expect(plainRows.map((m) => m[4])[3]).toBe('0.0%');
    expect(plainRows.reduce((sum, m) => sum + Number(m[4]!.replace('%', '')), 0)).toBeCloseTo(100, 0);
    expect(html).toContain('<span class="chip">active <b>3</b></span>');
    const plainChanges = /<tbody id="changes">([\s\S]*?)<\/tbody>/.exec(html)?.[1] ?? '';
    expect(plainChanges).toMatch(/<td class="name">delta<\/td><td><span class="tag down">down<\/span>/);

    const { page, problems } = await openPage();
    const response = await page.goto(`${t.admin}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toBe(STATS_PAGE_CSP);
    // In the document as it arrives, before any script has run.
    expect(await page.$$('tr[data-upstream]')).toHaveLength(4);

    const listed = await rows(page);
    expect(listed.map((r) => [r.name, r.address, r.state])).toEqual([
      ['alpha', upstreams[0]!.address, 'up'],
      ['bravo', upstreams[1]!.address, 'up'],
      ['charlie', upstreams[2]!.address, 'up'],
      ['delta', `127.0.0.1:${deadPort}`, 'down'],
    ]);
    // Key shares of the routable upstreams add up to the whole table; a down one has none.
    const shares = listed.map((r) => Number(r.cells[8]!.replace('%', '')));
    expect(shares[3]).toBe(0);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 0);
    const header = await page.textContent('section[data-listener="default"] .card-head');
    expect(header).toContain(t.tether.runtime()!.listener.address);
    expect(header).toContain('tcp');
    expect(header).toContain('ring');

    // Drain through the API: the page shows it within one refresh.
    const started = Date.now();
    expect((await adminCall(t.admin, 'POST', '/upstreams/bravo/drain', {})).status).toBe(200);
    await waitForState(page, 'bravo', 'draining');
    expect(Date.now() - started).toBeLessThanOrEqual(5_000);
    expect(await stateOf(page, 'bravo')).toBe('draining');
    // A drained upstream gets no new keys: its share is 0 on the new table.
    await waitForText(page, 'tr[data-upstream="bravo"] .pct', '0.0%');
    const changes = await page.$$eval('#changes tr', (trs) => trs.map((tr) => (tr.textContent ?? '').toLowerCase()));
    expect(changes[0]).toContain('bravo');
    expect(changes[0]).toContain('draining');
    expect(changes.some((c) => c.includes('delta') && c.includes('down'))).toBe(true);
    expect(await page.textContent('#status-text')).toMatch(/^live/);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('works with a token given as ?token=, which the HTML never contains', async () => {
    const token = 'page-token-Zx81';
    upstreams = await startUpstreams(['a', 'b']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_ADMIN_TOKEN: token });
    const t = tether;

    // Without the token, or with a wrong one: 401 for the page and its data.
    expect((await fetch(`${t.admin}/`)).status).toBe(401);
    expect((await fetch(`${t.admin}/?token=wrong`)).status).toBe(401);
    expect((await fetch(`${t.admin}/stats.json`)).status).toBe(401);
    // ?token= is for the page and stats.json only.
    expect((await fetch(`${t.admin}/upstreams?token=${token}`)).status).toBe(401);
    expect((await fetch(`${t.admin}/stats.json?token=${token}`)).status).toBe(200);
    expect((await fetch(`${t.admin}/stats.json`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    const html = await fetch(`${t.admin}/?token=${token}`);
    expect(html.status).toBe(200);
    expect(html.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await html.text()).not.toContain(token);

    const bare = await browser.newPage();
    expect((await bare.goto(`${t.admin}/`))?.status()).toBe(401);
    await bare.close();

    const { page, problems } = await openPage();

    const requests: string[] = [];
    page.on('request', (req) => requests.push(req.url()));
    const response = await page.goto(`${t.admin}/?token=${encodeURIComponent(token)}`);
    expect(response?.status()).toBe(200);
    expect((await rows(page)).map((r) => r.name)).toEqual(['a', 'b']);

    // Refreshes keep working: a change made now shows up.
    expect((await adminCall(t.admin, 'POST', '/upstreams/a/drain', {}, token)).status).toBe(200);
    await waitForState(page, 'a', 'draining');
    expect(await page.textContent('#status-text')).toMatch(/^live/);
    // The refreshes (the page fetched again) carry the token in a header, not in their URLs.
    const polls = requests.filter((u) => u === `${t.admin}/`);
    expect(polls.length).toBeGreaterThan(0);
    // Nothing in the document holds it either.
    expect(await page.content()).not.toContain(token);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('stats.json: key shares match routing the sample keys; a removed upstream stays while its connections do', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' });
    const t = tether;
    expect((await adminCall(t.admin, 'PUT', '/upstreams/c', { address: upstreams[2]!.address, weight: 3 })).status).toBe(200);
    type Stats = { keySample: number; listeners: { upstreams: { name: string; state: string; active: number; share: number }[] }[] };
    const stats = async (): Promise<Stats> => (await adminCall(t.admin, 'GET', '/stats.json')).body as Stats;

    const expected = new Map<string, number>();
    const pool = t.tether.runtime()!.pool;
    for (let i = 0; i < 10_000; i++) {
      const name = pool.route(`k${i}`, 1).candidates[0]!.name;
      expected.set(name, (expected.get(name) ?? 0) + 1);
    }
    const before = await stats();
    expect(before.keySample).toBe(10_000);
    for (const u of before.listeners[0]!.upstreams) expect(u.share, u.name).toBe((expected.get(u.name) ?? 0) / 10_000);
    // Weight 3 of 5: c holds about 60% of the keys.
    expect(before.listeners[0]!.upstreams.find((u) => u.name === 'c')!.share).toBeGreaterThan(0.5);

    const held = await connectAndGreet(t.port, '127.0.0.5');
    sockets.push(held.socket);
    const name = held.upstream!;
    expect((await adminCall(t.admin, 'DELETE', `/upstreams/${name}`)).status).toBe(200);
    const after = (await stats()).listeners[0]!.upstreams;
    expect(after.find((u) => u.name === name)).toMatchObject({ state: 'removed', active: 1, share: 0 });
    expect(after.filter((u) => u.state !== 'removed').reduce((n, u) => n + u.share, 0)).toBeCloseTo(1, 10);
    held.socket.destroy();
    await waitFor(async () => !(await stats()).listeners[0]!.upstreams.some((u) => u.name === name), 5_000, 'the removed upstream to leave');
  });

  it('shows hostile text as text (names, details) and runs no injected script', async () => {
    // Names are validated today, so no input path can carry markup; this serves the
    // page with crafted data from a real local server to test the renderer itself.
    const evil = '<img src=x onerror="window.__pwned=1">';
    const stats: StatsSnapshot = {
      generatedAt: new Date().toISOString(),
      process: { pid: 1, node: 'v20', uptimeS: 5, rssBytes: 1, heapUsedBytes: 1 },
      keySample: 10_000,
      listeners: [
        {
          name: `l${evil}`,
          address: '127.0.0.1:1',
          mode: 'tcp',
          hash: 'ring',
          vnodes: 160,
          balanceFactor: 0,
          active: 0,
          outcomes: { ok: 0, refused: 0, no_upstream: 0, connect_failed: 0, bad_request: 0, timeout: 0 },
          decisions: { learned: 0, hash: 0, p2c: 0 },
          fromClient: 0,
          toClient: 0,
          upstreams: [{ name: `u${evil}`, address: evil, state: 'up', weight: 1, active: 0, total: 0, fromClient: 0, toClient: 0, share: 1 }],
        },
      ],
      changes: [{ at: new Date().toISOString(), listener: 'x', upstream: `u${evil}`, change: 'down', detail: `</td><script>window.__pwned=2</script>` }],
    };
    const server = http.createServer((req, res) => {
      if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': STATS_PAGE_CSP });
        res.end(statsPage(stats));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(stats));
      }
    });
    const port = await listenLoopback(server);
    try {
      const { page, problems } = await openPage();
      await page.goto(`http://127.0.0.1:${port}/`);
      // As served, and again after a refresh has swapped in a freshly fetched copy.
      for (const when of ['served', 'refreshed']) {
        if (when === 'refreshed') await page.waitForFunction(() => /^live/.test((globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null } | null } }).document.getElementById('status-text')?.textContent ?? ''), undefined, { timeout: 10_000 });
        expect(await page.$$('section.listener img, #changes img, #changes script'), when).toHaveLength(0);
        expect(await page.textContent('section.listener h2'), when).toBe(`l${evil}`);
        expect((await rows(page))[0]!.cells.slice(0, 2), when).toEqual([`u${evil}`, evil]);
        expect(await page.textContent('#changes'), when).toContain('</td><script>');
        await new Promise((r) => setTimeout(r, 200));
        expect(await page.evaluate(() => typeof (globalThis as { __pwned?: unknown }).__pwned), when).toBe('undefined');
      }
      // What curl gets: the markup of every value escaped.
      const html = statsPage(stats);
      expect(html).not.toContain('<img');
      expect(html).not.toContain('<script>window');
      expect(html).toContain('u&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;');
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
