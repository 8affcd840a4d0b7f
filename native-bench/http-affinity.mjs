/**
 * The http-affinity workload of `npm run bench` (run.mjs --workloads=http-affinity):
 * keep-alive requests, each carrying `x-session: ID` with ID drawn at random from
 * 1,000 session ids, through balancers that route HTTP requests by that header:
 *
 *   direct         one upstream, no balancer
 *   tether hash    TETHER_MODE=http TETHER_KEY=header:x-session (ring hash)
 *   tether learn   the same plus TETHER_LEARN=header:x-session=(.+): the upstreams
 *                  echo the header, so every response stores a pin and every request
 *                  looks one up (the closest match to HAProxy's stick table)
 *   naive http     peers/naive-http-proxy.mjs: node:http server + http.request, the
 *                  header hashed mod 3, nothing else (what node:http alone costs)
 *   HAProxy hash   mode http, balance hdr(x-session), hash-type consistent
 *   HAProxy stick  the same plus a stick table on req.hdr(x-session)
 *   nginx hash     http module, hash $http_x_session consistent, upstream keepalive
 *
 * Each row runs twice a round: keep-alive, then (after every keep-alive row) with
 * `Connection: close` on every request, a new connection per request (wrk
 * -H 'Connection: close', as the connrate workload does; the upstreams answer it
 * with a close too, so direct is a new connection per request as well).
 *
 * After every measurement the affinity is checked, not assumed: each upstream
 * reports the ids it saw (an id seen on two upstreams is an error, printed loudly
 * and keeping the run out of the medians); tether is asked `/route?key=` for every
 * id and must name the upstream that saw it (`via: learned` in the learning row);
 * HAProxy's stick table, read over its stats socket, must hold every id on the
 * upstream that saw it.
 *
 * run.mjs owns processes, rounds and files; this module owns the rows, their peer
 * settings, the measurement, the checks and the table.
 */
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';

export const WORKLOAD = 'http-affinity';
export const SESSION_COUNT = 1000;
const HEADER = 'x-session';
const LEARN_RULE = `header:${HEADER}=(.+)`;

/**
 * Session ids as a web framework makes them (32 hex digits), the same in every run:
 * a seeded xorshift, so runs and machines hash the same keys.
 */
export function sessionIds(count = SESSION_COUNT) {
  let x = 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0).toString(16).padStart(8, '0');
  };
  return Array.from({ length: count }, () => next() + next() + next() + next());
}

/** tether's hash and learned-pins rows again on another balancer process of run.mjs (`balancer`). */
function tetherVariants(suffix, balancer, labelSuffix, routing) {
  return ['hash', 'learn'].map((kind) => ({
    id: `tether-${kind}-${suffix}`,
    balancer,
    label: `tether http, ${kind === 'hash' ? 'hash' : 'learned pins'}, ${labelSuffix}`,
    routing,
    counterpart: kind === 'hash' ? 'haproxy-hash' : 'haproxy-stick',
    learn: kind === 'learn',
    spec: {
      admin: true,
      env: { TETHER_MODE: 'http', TETHER_KEY: `header:${HEADER}`, ...(kind === 'learn' ? { TETHER_LEARN: LEARN_RULE } : {}) },
    },
  }));
}

/**
 * The rows, in the order each round runs them. `balancer` is the process run.mjs
 * starts; `spec` adjusts it (tether environment, peer config template and fields,
 * an admin listener for the check); `counterpart` is the HAProxy row that routes the
 * same way, the one "÷ HAProxy" divides by.
 */
export const ROWS = [
  { id: 'direct', balancer: 'direct', label: 'direct (no balancer)', routing: 'one upstream' },
  {
    id: 'tether-hash',
    balancer: 'tether',
    label: 'tether http, hash',
    routing: `\`TETHER_KEY=header:${HEADER}\` (ring)`,
    counterpart: 'haproxy-hash',
    spec: { admin: true, env: { TETHER_MODE: 'http', TETHER_KEY: `header:${HEADER}` } },
  },
  {
    id: 'tether-learn',
    balancer: 'tether',
    label: 'tether http, learned pins',
    routing: `the same + \`TETHER_LEARN=${LEARN_RULE}\``,
    counterpart: 'haproxy-stick',
    learn: true,
    spec: { admin: true, env: { TETHER_MODE: 'http', TETHER_KEY: `header:${HEADER}`, TETHER_LEARN: LEARN_RULE } },
  },
  // A before/after in one run: the same two rows on the build run.mjs --baseline names.
  ...tetherVariants('base', 'tether-base', 'baseline build', 'the same, `--baseline` build'),
  // Every core (issue 18): the same two rows with TETHER_WORKERS=2, run when run.mjs
  // has the tether-w2 balancer (--peer-threads=2): pins looked up from 2 workers.
  ...tetherVariants('w2', 'tether-w2', '2 workers', 'the same, `TETHER_WORKERS=2`'),
  {
    id: 'naive-http',
    balancer: 'naive',
    label: 'naive node:http proxy',
    routing: 'FNV-1a of the header mod 3',
    spec: { script: 'naive-http-proxy.mjs' },
  },
  {
    id: 'haproxy-hash',
    balancer: 'haproxy',
    label: 'HAProxy http, hash',
    routing: `\`balance hdr(${HEADER})\`, \`hash-type consistent\``,
    spec: { template: 'haproxy-http.cfg', fields: { BACKEND: 'by_hash' } },
  },
  {
    id: 'haproxy-stick',
    balancer: 'haproxy',
    label: 'HAProxy http, stick table',
    routing: `the same + \`stick on req.hdr(${HEADER})\``,
    stick: true,
    spec: { template: 'haproxy-http.cfg', fields: { BACKEND: 'stick_table' } },
  },
  {
    id: 'nginx-hash',
    balancer: 'nginx',
    label: 'nginx http, hash',
    routing: `\`hash $http_x_session consistent\``,
    spec: { template: 'nginx-http.conf' },
  },
];

/** Every row again with `Connection: close` on each request: a new connection per request. */
const CLOSE_ROWS = ROWS.map((r) => ({
  ...r,
  id: `${r.id}-close`,
  label: `${r.label}, Connection: close`,
  tableLabel: r.label,
  counterpart: r.counterpart && `${r.counterpart}-close`,
  close: true,
}));

const METRICS = [
  { key: 'rps', label: 'req/s', better: 'higher' },
  { key: 'p99Ms', label: 'p99 ms', better: 'lower' },
  // The balancer's own CPU (user + system, all its processes) over warm-up and
  // measurement, divided by the requests the upstreams answered meanwhile: what a
  // request costs it, whatever else the shared CPUs were doing.
  { key: 'cpuUsPerReq', label: 'CPU µs/req', better: 'lower' },
];

/**
 * @param h what run.mjs lends: opts, tools, log, wrk(target, extra, after),
 *   loadgen(), upstreams() (the forked helpers), tmpDir(), median, fmt, fmtRatio.
 */
export function createHttpAffinity(h) {
  const ids = sessionIds();
  let idsFile = null;

  /** Rows whose balancer is in this run (`--only`, installed peers). */
  function rows(balancers) {
    return [...ROWS, ...CLOSE_ROWS].filter((r) => balancers.includes(r.balancer));
  }

  /** The upstreams, in the order run.mjs hands them to balancers (up1, up2, up3). */
  function upstreamPorts() {
    return h.upstreams().info.sessionHttp;
  }

  /** The keep-alive tool for keep-alive rows, the new-connection one for close rows. */
  const toolOf = (row) => (row.close ? h.tools.connrate : h.tools.http);

  async function load(target, row) {
    if (toolOf(row) === 'wrk') {
      if (idsFile === null) {
        idsFile = join(h.tmpDir(), 'session-ids.txt');
        h.writeFile(idsFile, `${ids.join('\n')}\n`);
      }
      const close = row.close ? ['-H', 'Connection: close'] : [];
      return h.wrk(target, [...close, '-s', join(h.peersDir, 'sessions.lua')], ['--', idsFile]);
    }
    const durationMs = h.opts.duration * 1000;
    const warmupMs = h.opts.warmup * 1000;
    if (row.close) {
      const r = await h.loadgen().call(
        'connrate',
        { host: target.host, port: target.port, concurrency: 50, warmupMs, durationMs, sources: h.sources, sessions: ids },
        durationMs + warmupMs + 20_000,
      );
      return { rps: r.cps, p99Ms: r.p99Ms, errors: r.errors };
    }
    return h.loadgen().call(
      'http',
      { host: target.host, port: target.port, connections: 50, warmupMs, durationMs, sessions: ids },
      durationMs + warmupMs + 15_000,
    );
  }

  async function run(target, instance, row) {
    await h.upstreams().ask('sessions'); // start a fresh record of who saw which id
    const pids = instance.pids();
    const accepted0 = (await h.upstreams().stats()).accepted;
    const cpu0 = pids.length ? h.cpuSeconds(pids) : null;
    const measured = await load(target, row);
    const cpu1 = pids.length ? h.cpuSeconds(pids) : null;
    const seen = (await h.upstreams().ask('sessions')).byPort;
    const affinity = await verify(row, instance, seen);
    // Connections the upstreams accepted over warm-up and measurement: does the
    // balancer reuse upstream connections when each client one carries one request?
    affinity.upstreamConnections = (await h.upstreams().stats()).accepted - accepted0;
    const cpuUsPerReq = cpu0 !== null && affinity.requests > 0 ? ((cpu1 - cpu0) * 1e6) / affinity.requests : null;
    const result = { ...measured, cpuUsPerReq, affinity };
    if (affinity.problems.length > 0) {
      const what = affinity.problems.join('; ');
      h.log(`\n  !!! ${row.label}: AFFINITY BROKEN: ${what}\n`);
      result.error = `affinity broken: ${what}`;
    }
    return result;
  }

  /** Who saw which id, checked against the balancer's own view where it has one. */
  async function verify(row, instance, byPort) {
    const ports = upstreamPorts();
    const names = ports.map((_, i) => `up${i + 1}`);
    const owners = new Map();
    const perUpstream = {};
    let noKey = 0;
    let requests = 0;
    ports.forEach((port, i) => {
      const r = byPort[port] ?? { ids: [], requests: 0, noKey: 0 };
      perUpstream[names[i]] = r.ids.length;
      noKey += r.noKey;
      requests += r.requests + r.noKey;
      for (const id of r.ids) {
        const list = owners.get(id);
        if (list) list.push(names[i]);
        else owners.set(id, [names[i]]);
      }
    });
    const problems = [];
    const split = [...owners.values()].filter((l) => l.length > 1);
    if (split.length > 0) {
      problems.push(`${split.length} of ${owners.size} session ids reached more than one upstream (e.g. one on ${split[0].join(' and ')})`);
    }
    if (noKey > 0) problems.push(`${noKey} requests reached an upstream without their ${HEADER} header`);
    // Ids are drawn at random: of N ids, about N(1 - 1/N)^R never come up in R requests
    // (a close row on a busy machine makes few). More unseen ones than chance explains
    // means requests went missing.
    const byChance = ids.length * (1 - 1 / ids.length) ** requests;
    if (ids.length - owners.size > 3 * byChance + 5) {
      problems.push(`only ${owners.size} of ${ids.length} session ids reached an upstream (chance leaves out ~${Math.round(byChance)} in ${requests} requests)`);
    }
    if (row.balancer !== 'direct' && Object.values(perUpstream).some((n) => n === 0)) {
      problems.push(`an upstream saw no session at all (${JSON.stringify(perUpstream)})`);
    }
    const check = { sessions: owners.size, requests, perUpstream, splitIds: split.length, noKey, problems };
    if (row.balancer.startsWith('tether')) await checkTether(row, instance, owners, check);
    if (row.stick) await checkStickTable(instance, owners, check);
    return check;
  }

  /** Every id: does `/route?key=` name the upstream that saw it, and how? */
  async function checkTether(row, instance, owners, check) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    try {
      const want = row.learn ? 'learned' : 'hash';
      const list = [...owners.entries()];
      let agree = 0;
      let viaWanted = 0;
      let next = 0;
      const worker = async () => {
        while (next < list.length) {
          const [id, seenOn] = list[next++];
          const answer = JSON.parse(await adminGet(agent, instance.adminPort, `/route?key=${encodeURIComponent(id)}`));
          if (seenOn.length === 1 && answer.upstream === seenOn[0]) agree++;
          if (answer.via === want) viaWanted++;
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      const metrics = await adminGet(agent, instance.adminPort, '/metrics');
      const decisions = {};
      for (const m of metrics.matchAll(/^tether_route_decisions_total\{[^}]*via="(\w+)"[^}]*\} (\d+)/gm)) {
        decisions[m[1]] = (decisions[m[1]] ?? 0) + Number(m[2]);
      }
      check.balancerView = `tether /route: ${agree} of ${list.length} ids on the upstream that saw them, ${viaWanted} via ${want}`;
      check.routeDecisions = decisions;
      if (agree < list.length) problems(check, `tether /route names another upstream for ${list.length - agree} ids`);
      if (viaWanted < list.length) problems(check, `tether /route answers via ${want} for only ${viaWanted} of ${list.length} ids`);
      if (row.learn && !(decisions.learned > 0)) problems(check, 'tether made no decision via a learned pin');
    } catch (err) {
      problems(check, `could not ask tether's admin API: ${err?.message ?? err}`);
    } finally {
      agent.destroy();
    }
  }

  /** The stick table over HAProxy's stats socket: every id, on the upstream that saw it. */
  async function checkStickTable(instance, owners, check) {
    try {
      const text = await unixCommand(join(instance.dir, 'haproxy.sock'), 'show table stick_table\n');
      const entries = new Map();
      for (const m of text.matchAll(/ key=(\S+) .*?server_id=(\d+)/g)) entries.set(m[1], `up${m[2]}`);
      let agree = 0;
      for (const [id, seenOn] of owners) if (seenOn.length === 1 && entries.get(id) === seenOn[0]) agree++;
      check.balancerView = `HAProxy stick table: ${entries.size} entries, ${agree} of ${owners.size} ids on the upstream that saw them`;
      if (agree < owners.size) problems(check, `the stick table holds ${agree} of ${owners.size} ids on the upstream that saw them`);
    } catch (err) {
      problems(check, `could not read HAProxy's stick table: ${err?.message ?? err}`);
    }
  }

  function problems(check, text) {
    check.problems.push(text);
  }

  // ---- results -------------------------------------------------------------------

  /** Medians and ratios per row, in the shape of run.mjs's summary entries. */
  function summarize(runs, shown) {
    const out = {};
    for (const m of METRICS) {
      const byBalancer = rowMedians(runs, shown, m.key, h.median);
      for (const row of shown) {
        const cell = byBalancer[row.id];
        const direct = byBalancer.direct?.median;
        const peer = row.counterpart ? byBalancer[row.counterpart]?.median : null;
        cell.vsDirect = cell.median !== null && direct ? cell.median / direct : null;
        cell.vsHaproxy = cell.median !== null && peer ? cell.median / peer : null;
        if (row.counterpart) cell.haproxyCounterpart = row.counterpart;
        cell.label = row.label;
      }
      out[`${WORKLOAD}.${m.key}`] = { label: `session-keyed HTTP ${m.label}`, better: m.better, workload: WORKLOAD, metric: m.key, byBalancer };
    }
    return out;
  }

  function markdown(summary, runs, shown) {
    const rps = summary[`${WORKLOAD}.rps`].byBalancer;
    const p99 = summary[`${WORKLOAD}.p99Ms`].byBalancer;
    const cpu = summary[`${WORKLOAD}.cpuUsPerReq`].byBalancer;
    const d = h.opts.duration;
    const toolText = (close) =>
      toolOf({ close }) === 'wrk'
        ? `\`wrk -t${h.opts.wrkThreads} -c50 -d${d}s --latency${close ? " -H 'Connection: close'" : ''} -s native-bench/peers/sessions.lua\``
        : close
          ? 'a Node client, 50 concurrent, from 200 source addresses'
          : 'a Node loop, 50 connections, one request in flight each';
    const lastView = (row) => {
      const list = runs?.[row.id] ?? [];
      const bad = list.filter((r) => r?.error).length;
      const good = list.filter((r) => r && !r.error && r.affinity);
      if (good.length === 0) return bad ? `broken in ${bad} of ${list.length} runs` : '—';
      const a = good.at(-1).affinity;
      const split = Object.values(a.perUpstream).join(' / ');
      const ok = bad ? `**broken in ${bad} of ${list.length} runs**` : `held in ${good.length} of ${list.length} runs`;
      const conns = a.upstreamConnections === undefined ? '' : `; ${a.upstreamConnections.toLocaleString('en-US')} upstream connections`;
      return `${ok}; ids per upstream ${split}${conns}`;
    };
    const table = (list) => [
      '| balancer | routing | req/s ↑ | p99 ms ↓ | CPU µs/req ↓ | req/s ÷ direct | p99 ÷ direct | req/s ÷ HAProxy | p99 ÷ HAProxy | CPU ÷ HAProxy | affinity (last run) |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
      ...list.map((row) => {
        const [a, b, c] = [rps[row.id], p99[row.id], cpu[row.id]];
        return (
          `| ${row.tableLabel ?? row.label} | ${row.routing} | ${h.fmt(a.median)} | ${h.fmt(b.median)} | ${h.fmt(c.median)} | ` +
          `${h.fmtRatio(a.vsDirect)} | ${h.fmtRatio(b.vsDirect)} | ${h.fmtRatio(a.vsHaproxy)} | ${h.fmtRatio(b.vsHaproxy)} | ${h.fmtRatio(c.vsHaproxy)} | ${lastView(row)} |`
        );
      }),
    ];
    const keepAlive = shown.filter((r) => !r.close);
    const close = shown.filter((r) => r.close);
    const out = [];
    out.push(`## Session affinity in http mode (\`${WORKLOAD}\`)\n`);
    out.push(
      `GETs, each with \`${HEADER}: ID\` drawn at random from ${ids.length.toLocaleString('en-US')} session ids, warmed up ${h.opts.warmup} s; ` +
        `three upstreams answer \`ok\` and echo the header. After every run each upstream reports the ids it saw ` +
        `(an id on two upstreams fails the run), tether's \`/route\` and HAProxy's stick table are checked against them. ` +
        `"÷ HAProxy" divides by the HAProxy row that routes the same way (hash by hash, learned pins by stick table), ` +
        `keep-alive by keep-alive, close by close. Each round runs every keep-alive row, then every close row.\n`,
    );
    if (keepAlive.length) out.push(`### Keep-alive: ${toolText(false)}\n`, ...table(keepAlive));
    if (close.length) {
      out.push(
        `\n### Connection: close, a new connection per request: ${toolText(true)}\n`,
        'Every request says `Connection: close`; the balancer answers and closes the client connection (the upstreams answer ' +
          'a close with a close, so direct is a new connection per request too). "upstream connections": how many the upstreams ' +
          'accepted over the run: a balancer that keeps its upstream connections alive opens few.\n',
        ...table(close),
      );
    }
    out.push(
      '\nCPU µs/req: the balancer\'s own CPU time (user + system, every process of it) over warm-up and measurement, ' +
        'divided by the requests the upstreams answered meanwhile. It depends much less than req/s on the CPU the load ' +
        'generator, the upstreams and other processes leave over, though not entirely: a balancer with a core to itself ' +
        'handles fewer requests per wake-up and pays somewhat more for each.',
    );
    out.push('\nEvery run (req/s; p99 ms; CPU µs/req):\n');
    const runsOf = (cell) => cell.runs.map(h.fmt).join(' / ') || '—';
    for (const row of shown) out.push(`- ${row.label}: ${runsOf(rps[row.id])}; ${runsOf(p99[row.id])}; ${runsOf(cpu[row.id])}`);
    const views = shown
      .map((row) => [row, (runs?.[row.id] ?? []).filter((r) => r?.affinity?.balancerView).at(-1)])
      .filter(([, r]) => r);
    if (views.length) {
      out.push('\nThe balancers\' own view, last run:\n');
      for (const [row, r] of views) out.push(`- ${row.label}: ${r.affinity.balancerView}`);
    }
    const errors = [];
    for (const row of shown) {
      (runs?.[row.id] ?? []).forEach((r, i) => {
        if (r?.error) errors.push(`- ${row.label}, round ${i + 1}: ${r.error.split('\n')[0]}`);
        else if (r?.errors) errors.push(`- ${row.label}, round ${i + 1}: ${r.errors} client-side errors during the run`);
      });
    }
    if (errors.length) out.push(`\n### Errors (${WORKLOAD})\n\n${errors.join('\n')}`);
    return out.join('\n');
  }

  return {
    title: 'Session-keyed HTTP requests, keep-alive and Connection: close, 50 connections, 1,000 sessions',
    metrics: METRICS,
    rows,
    run,
    summarize,
    markdown,
    tool: () => (h.tools.http === 'wrk' ? 'wrk -s peers/sessions.lua' : 'a Node loop with x-session'),
  };
}

/** Each row's median of `key` over its good runs, and those runs: { [row id]: { median, runs } }. */
export function rowMedians(runs, shown, key, median) {
  const byRow = {};
  for (const row of shown) {
    const ok = (runs?.[row.id] ?? []).filter((r) => r && !r.error && Number.isFinite(r[key])).map((r) => r[key]);
    byRow[row.id] = { median: median(ok), runs: ok };
  }
  return byRow;
}

export function adminGet(agent, port, path) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${path.split('?')[0]}: ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path.split('?')[0]}: timeout`)));
    req.on('error', reject);
  });
}

/** One command on a HAProxy stats socket; the answer ends when HAProxy closes. */
function unixCommand(path, command) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    let text = '';
    socket.setEncoding('utf8');
    socket.setTimeout(5000, () => socket.destroy(new Error('stats socket timeout')));
    socket.on('connect', () => socket.write(command));
    socket.on('data', (d) => (text += d));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
  });
}
