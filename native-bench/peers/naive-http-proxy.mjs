#!/usr/bin/env node
/**
 * The http-affinity baseline: the smallest node:http proxy that routes each request
 * by its `x-session` header, with the same parts tether's http mode is built from
 * (an http.Server reading request heads, http.request over keep-alive agents, one per
 * upstream) and nothing else: no hop-by-hop surgery, no retries, no timeouts, no
 * pins, no metrics. It picks an upstream by a hash of the header (mod N, not
 * consistent), so it routes like the others in the benchmark. What it costs per
 * request is what node:http costs; tether's row minus this row is tether's own work.
 *
 *   NAIVE_LISTEN=127.0.0.1:7000 NAIVE_UPSTREAMS=127.0.0.1:8001,127.0.0.1:8002 node naive-http-proxy.mjs
 */
import http from 'node:http';

function hostPort(text) {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

const listen = hostPort(process.env.NAIVE_LISTEN ?? '127.0.0.1:7000');
const upstreams = (process.env.NAIVE_UPSTREAMS ?? '')
  .split(',')
  .filter(Boolean)
  .map((text) => ({
    ...hostPort(text),
    agent: new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, scheduling: 'lifo' }),
  }));
if (upstreams.length === 0) {
  process.stderr.write('naive-http-proxy: NAIVE_UPSTREAMS is empty\n');
  process.exit(2);
}

function pick(key = '') {
  let h = 2166136261; // FNV-1a
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return upstreams[(h >>> 0) % upstreams.length];
}

const server = http.createServer((req, res) => {
  const { host, port, agent } = pick(req.headers['x-session']);
  const upstreamReq = http.request({ host, port, agent, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
    res.writeHead(upRes.statusCode, upRes.statusMessage, upRes.headers);
    upRes.pipe(res);
  });
  upstreamReq.on('error', () => res.destroy());
  req.pipe(upstreamReq);
});
server.keepAliveTimeout = 0; // keep idle client connections open, as the others do
server.listen({ host: listen.host, port: listen.port, backlog: 2048 });
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
