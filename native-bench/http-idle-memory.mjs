/**
 * The http-memory workload of `npm run bench` (run.mjs --workloads=http-memory):
 * memory per idle keep-alive client connection in http mode. The load generator
 * opens `--idle` connections (default 5,000) from 200 source addresses; each sends
 * one keep-alive GET with `x-session: ID` (the ids of http-affinity) and, once its
 * answer is back, stays open and silent. The balancer's RSS grows by what it keeps
 * per idle client connection in http mode (its parser state, buffers, timers); its
 * upstream connections are pooled, not one per client.
 *
 *   tether hash    TETHER_MODE=http TETHER_KEY=header:x-session
 *   HAProxy hash   mode http, balance hdr(x-session) (peers/haproxy-http.cfg, by_hash)
 *   nginx hash     hash $http_x_session consistent (peers/nginx-http.conf)
 *
 * (http-affinity's hash rows, the same settings.)
 *
 * The measurement is the memory workload's (run.mjs idleRssPerConn): a 10% warm-up
 * batch opened and closed, the baseline, the connections, 1 s, VmRSS again (nginx:
 * its workers summed); a run in which the balancer closed any of them fails.
 */
import { ROWS as AFFINITY_ROWS, rowMedians, sessionIds } from './http-affinity.mjs';

export const WORKLOAD = 'http-memory';

/**
 * http-affinity's hash rows, as configured there (tether without its admin listener:
 * nothing asks it here): tether hash is held to HAProxy hash.
 */
const ROWS = ['tether-hash', 'haproxy-hash', 'nginx-hash'].map((id) => {
  const row = AFFINITY_ROWS.find((r) => r.id === id);
  return { ...row, spec: { ...row.spec, admin: false } };
});

const METRICS = [{ key: 'kibPerConn', label: 'KiB per idle http conn', better: 'lower' }];

/**
 * @param h what run.mjs lends: opts, loadgen(), sources, idleRssPerConn(instance,
 *   open, close), closeIdle(), median, fmt, fmtRatio.
 */
export function createHttpIdleMemory(h) {
  const ids = sessionIds();

  function rows(balancers) {
    return ROWS.filter((r) => balancers.includes(r.balancer));
  }

  async function run(target, instance) {
    const open = async (count) => {
      const r = await h.loadgen().call(
        'idleHttpOpen',
        { host: target.host, port: target.port, count, sources: h.sources, parallel: 100, sessions: ids },
        60_000,
      );
      if (r.opened < count) throw new Error(`${r.opened} of ${count} connections got their answer and stayed open (${r.errors} errors)`);
    };
    return h.idleRssPerConn(instance, open, h.closeIdle);
  }

  function summarize(runs, shown) {
    const [m] = METRICS;
    const byBalancer = rowMedians(runs, shown, m.key, h.median);
    const haproxy = byBalancer['haproxy-hash']?.median;
    for (const row of shown) {
      const cell = byBalancer[row.id];
      cell.vsHaproxy = cell.median !== null && haproxy ? cell.median / haproxy : null;
      if (row.counterpart) cell.haproxyCounterpart = row.counterpart;
      cell.label = row.label;
    }
    return { [`${WORKLOAD}.${m.key}`]: { label: m.label, better: m.better, workload: WORKLOAD, metric: m.key, byBalancer } };
  }

  function markdown(summary, runs, shown) {
    const cells = summary[`${WORKLOAD}.${METRICS[0].key}`].byBalancer;
    const out = [`## Memory per idle keep-alive client connection in http mode (\`${WORKLOAD}\`)\n`];
    out.push(
      `A Node client opens ${h.opts.idle.toLocaleString('en-US')} connections from ${h.sources.length} source addresses; each sends one ` +
        `keep-alive GET with \`x-session: ID\` (${ids.length.toLocaleString('en-US')} ids) and stays open, silent, once its answer is back. ` +
        'Growth of the balancer\'s VmRSS (`/proc/PID/status`; nginx: its workers summed) divided by the connections, after a 10% ' +
        'batch opened and closed first, as in the memory workload. A run in which the balancer closed any of them fails.\n',
    );
    out.push('| balancer | routing | KiB per idle conn ↓ | ÷ HAProxy | every run | VmRSS before → after, last run |');
    out.push('| --- | --- | ---: | ---: | --- | --- |');
    for (const row of shown) {
      const c = cells[row.id];
      const last = (runs?.[row.id] ?? []).filter((r) => r && !r.error).at(-1);
      const rss = last ? `${h.fmt(last.rssBeforeKiB / 1024)} → ${h.fmt(last.rssAfterKiB / 1024)} MiB` : '—';
      out.push(`| ${row.label} | ${row.routing} | ${h.fmt(c.median)} | ${h.fmtRatio(c.vsHaproxy)} | ${c.runs.map(h.fmt).join(' / ') || '—'} | ${rss} |`);
    }
    const errors = shown.flatMap((row) => (runs?.[row.id] ?? []).map((r, i) => (r?.error ? `- ${row.label}, round ${i + 1}: ${r.error}` : null)).filter(Boolean));
    if (errors.length) out.push(`\n### Errors (${WORKLOAD})\n\n${errors.join('\n')}`);
    return out.join('\n');
  }

  return { title: 'Memory per idle keep-alive http client connection', metrics: METRICS, rows, run, summarize, markdown };
}
