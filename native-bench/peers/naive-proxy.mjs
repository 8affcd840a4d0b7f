#!/usr/bin/env node
/**
 * The baseline from the issue: the smallest Node TCP proxy there is,
 * `client.pipe(upstream).pipe(client)`, plus the error handlers that keep one bad
 * socket from killing the process. It picks an upstream by a hash of the source
 * address (mod N, not consistent) so it routes like the others in the benchmark.
 *
 *   NAIVE_LISTEN=127.0.0.1:7000 NAIVE_UPSTREAMS=127.0.0.1:8001,127.0.0.1:8002 node naive-proxy.mjs
 */
import net from 'node:net';

function hostPort(text) {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

const listen = hostPort(process.env.NAIVE_LISTEN ?? '127.0.0.1:7000');
const upstreams = (process.env.NAIVE_UPSTREAMS ?? '').split(',').filter(Boolean).map(hostPort);
if (upstreams.length === 0) {
  process.stderr.write('naive-proxy: NAIVE_UPSTREAMS is empty\n');
  process.exit(2);
}

function pick(address = '') {
  let h = 2166136261; // FNV-1a
  for (let i = 0; i < address.length; i++) h = Math.imul(h ^ address.charCodeAt(i), 16777619);
  return upstreams[(h >>> 0) % upstreams.length];
}

const server = net.createServer((client) => {
  const { host, port } = pick(client.remoteAddress);
  const upstream = net.connect(port, host);
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen({ host: listen.host, port: listen.port, backlog: 2048 });
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
