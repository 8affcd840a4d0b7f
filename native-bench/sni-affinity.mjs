/**
 * The sni-affinity workload of `npm run bench` (run.mjs --workloads=sni-affinity):
 * new connections per second, each sending a real TLS ClientHello (Node's, its server
 * name drawn at random from 1,000 names sNNNN.bench) from 200 source addresses; the
 * upstream answers `ok` and closes once it has the hello. The balancer reads the
 * hello to route (or routes by address), so what differs between rows is what reading
 * first bytes costs:
 *
 *   tether sni      TETHER_KEY=sni,source-ip
 *   tether src      TETHER_KEY=source-ip (routed at once, nothing read first)
 *   HAProxy sni     tcp-request inspect-delay + req.ssl_hello_type, balance hash req.ssl_sni
 *   HAProxy src     balance source
 *   nginx sni       ssl_preread on, hash $ssl_preread_server_name consistent
 *   nginx src       hash $remote_addr consistent
 *
 * In the sni rows each name must reach one upstream (checked after every run, and
 * against tether's /route). CPU per connection: the balancer's own CPU (user +
 * system) over warm-up and measurement, divided by the connections the upstreams
 * answered meanwhile.
 */
import http from 'node:http';
import { adminGet, rowMedians } from './http-affinity.mjs';

export const WORKLOAD = 'sni-affinity';
const NAME_COUNT = 1000;
const NAMES = Array.from({ length: NAME_COUNT }, (_, i) => `s${String(i).padStart(4, '0')}.bench`);

const ROWS = [
  { id: 'tether-sni', balancer: 'tether', label: 'tether, sni', key: 'sni', nginx: 'nginx-sni', haproxy: 'haproxy-sni', spec: { admin: true, env: { TETHER_KEY: 'sni,source-ip' } } },
  { id: 'tether-src', balancer: 'tether', label: 'tether, source-ip', key: 'src', nginx: 'nginx-src', haproxy: 'haproxy-src', spec: { env: { TETHER_KEY: 'source-ip' } } },
  // Every core (issue 18): run when run.mjs has the tether-w2 balancer (--peer-threads=2).
  { id: 'tether-sni-w2', balancer: 'tether-w2', label: 'tether, sni, 2 workers', key: 'sni', nginx: 'nginx-sni', haproxy: 'haproxy-sni', spec: { admin: true, env: { TETHER_KEY: 'sni,source-ip' } } },
  { id: 'haproxy-sni', balancer: 'haproxy', label: 'HAProxy, req.ssl_sni', key: 'sni', spec: { template: 'haproxy-sni.cfg' } },
  { id: 'haproxy-src', balancer: 'haproxy', label: 'HAProxy, balance source', key: 'src' },
  { id: 'nginx-sni', balancer: 'nginx', label: 'nginx, ssl_preread', key: 'sni', spec: { template: 'nginx-sni.conf' } },
  { id: 'nginx-src', balancer: 'nginx', label: 'nginx, $remote_addr', key: 'src' },
];

const METRICS = [
  { key: 'cps', label: 'conn/s', better: 'higher' },
  { key: 'p99Ms', label: 'p99 ms', better: 'lower' },
  { key: 'cpuUsPerConn', label: 'CPU µs/conn', better: 'lower' },
];

/** @param h what run.mjs lends: opts, log, loadgen(), upstreams(), sources, cpuSeconds, median, fmt, fmtRatio. */
export function createSniAffinity(h) {
  function rows(balancers) {
    return ROWS.filter((r) => balancers.includes(r.balancer));
  }

  async function run(target, instance, row) {
    await h.upstreams().ask('sni'); // a fresh record of who saw which name
    const pids = instance.pids();
    const cpu0 = h.cpuSeconds(pids);
    const durationMs = h.opts.duration * 1000;
    const warmupMs = h.opts.warmup * 1000;
    const measured = await h.loadgen().call(
      'sniConnrate',
      { host: target.host, port: target.port, concurrency: 50, warmupMs, durationMs, sources: h.sources, names: NAMES },
      durationMs + warmupMs + 20_000,
    );
    const cpu1 = h.cpuSeconds(pids);
    const byPort = (await h.upstreams().ask('sni')).byPort;
    const check = await verify(row, instance, byPort);
    const result = { ...measured, cpuUsPerConn: check.connections > 0 ? ((cpu1 - cpu0) * 1e6) / check.connections : null, affinity: check };
    if (check.problems.length > 0) {
      h.log(`\n  !!! ${row.label}: ${check.problems.join('; ')}\n`);
      result.error = check.problems.join('; ');
    }
    return result;
  }

  async function verify(row, instance, byPort) {
    const owners = new Map();
    let connections = 0;
    let noKey = 0;
    const perUpstream = [];
    h.upstreams().info.sni.forEach((port, i) => {
      const r = byPort[port] ?? { names: [], connections: 0, noKey: 0 };
      connections += r.connections + r.noKey;
      noKey += r.noKey;
      perUpstream.push(r.connections);
      for (const name of r.names) owners.set(name, [...(owners.get(name) ?? []), `up${i + 1}`]);
    });
    const problems = [];
    if (noKey > 0) problems.push(`${noKey} connections reached an upstream without their ClientHello`);
    if (row.key === 'sni') {
      const split = [...owners.values()].filter((l) => l.length > 1).length;
      if (split > 0) problems.push(`${split} of ${owners.size} server names reached more than one upstream`);
      if (perUpstream.some((n) => n === 0)) problems.push(`an upstream saw no connection (${perUpstream.join(' / ')})`);
      if (row.balancer.startsWith('tether')) await checkRoutes(instance, owners, problems);
    }
    return { connections, names: owners.size, perUpstream, problems };
  }

  /** tether's /route for a sample of names must name the upstream that saw them. */
  async function checkRoutes(instance, owners, problems) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    try {
      let wrong = 0;
      for (const [name, seenOn] of [...owners].slice(0, 100)) {
        const answer = JSON.parse(await adminGet(agent, instance.adminPort, `/route?key=${name}`));
        if (answer.upstream !== seenOn[0]) wrong++;
      }
      if (wrong > 0) problems.push(`tether /route names another upstream for ${wrong} of 100 names`);
    } catch (err) {
      problems.push(`could not ask tether's admin API: ${err?.message ?? err}`);
    } finally {
      agent.destroy();
    }
  }

  function summarize(runs, shown) {
    const out = {};
    for (const m of METRICS) {
      const byBalancer = rowMedians(runs, shown, m.key, h.median);
      for (const row of shown) {
        const cell = byBalancer[row.id];
        const ratio = (peer) => (cell.median !== null && peer && byBalancer[peer]?.median ? cell.median / byBalancer[peer].median : null);
        cell.vsNginx = ratio(row.nginx);
        cell.vsHaproxy = ratio(row.haproxy);
      }
      out[`${WORKLOAD}.${m.key}`] = { label: `TLS-keyed ${m.label}`, better: m.better, workload: WORKLOAD, metric: m.key, byBalancer };
    }
    return out;
  }

  function markdown(summary, runs, shown) {
    const [cps, p99, cpu] = METRICS.map((m) => summary[`${WORKLOAD}.${m.key}`].byBalancer);
    const out = [`## New TLS connections keyed by server name (\`${WORKLOAD}\`)\n`];
    out.push(
      `A Node client, 50 concurrent, from 200 source addresses, warmed up ${h.opts.warmup} s, measured ${h.opts.duration} s: ` +
        `each connection sends one real ClientHello (server name drawn from ${NAME_COUNT.toLocaleString('en-US')}), ` +
        'the upstream answers `ok` once it has it and closes. In the sni rows every name must reach one upstream. ' +
        '"÷ nginx" and "÷ HAProxy" divide tether\'s row by the row of that peer that routes the same way.\n',
    );
    out.push('| balancer | conn/s ↑ | p99 ms ↓ | CPU µs/conn ↓ | conn/s ÷ nginx | CPU ÷ nginx | conn/s ÷ HAProxy | CPU ÷ HAProxy |');
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const row of shown) {
      const [a, b, c] = [cps[row.id], p99[row.id], cpu[row.id]];
      out.push(
        `| ${row.label} | ${h.fmt(a.median)} | ${h.fmt(b.median)} | ${h.fmt(c.median)} | ${h.fmtRatio(a.vsNginx)} | ${h.fmtRatio(c.vsNginx)} | ` +
          `${h.fmtRatio(a.vsHaproxy)} | ${h.fmtRatio(c.vsHaproxy)} |`,
      );
    }
    out.push('\nEvery run (conn/s; CPU µs/conn):\n');
    for (const row of shown) out.push(`- ${row.label}: ${cps[row.id].runs.map(h.fmt).join(' / ') || '—'}; ${cpu[row.id].runs.map(h.fmt).join(' / ') || '—'}`);
    const errors = shown.flatMap((row) => (runs?.[row.id] ?? []).map((r, i) => (r?.error ? `- ${row.label}, round ${i + 1}: ${r.error}` : null)).filter(Boolean));
    if (errors.length) out.push(`\n### Errors (${WORKLOAD})\n\n${errors.join('\n')}`);
    return out.join('\n');
  }

  return { title: 'New TLS connections keyed by server name, 50 concurrent', metrics: METRICS, rows, run, summarize, markdown };
}
