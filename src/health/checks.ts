/**
 * One active health check against one address: `tcp` (connect), `http:PATH` (a real
 * GET), `ws:PATH` (a real WebSocket handshake).
 *
 * runCheck never rejects and owns everything it opens: every path through it ends in
 * `finish`, which clears the deadline timer, drops the abort listener and destroys the
 * socket before the promise settles. A caller that awaits it holds nothing open after.
 *
 * Checks run once per target per interval, not per client connection, so a few
 * closures per check are fine here; the hot paths live in proxy/.
 */
import http from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';
import type { HealthCheck } from '../config/types.js';
import { connectHandle } from '../net/handle-socket.js';

export interface CheckTarget {
  /** Host as in the config: IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
}

export interface CheckResult {
  readonly ok: boolean;
  /** Short and stable enough to group on: `connect ECONNREFUSED`, `timeout`, `http 500`. */
  readonly reason: string;
}

/** Sent as User-Agent so upstream access logs can tell checks from clients. */
const USER_AGENT = 'tether-health';

/**
 * A check answers on the status line; the body is only read so the upstream can close
 * cleanly. Past this many bytes we stop reading instead of streaming a large (or
 * endless) page until the deadline turns a healthy answer into a `timeout`.
 */
const MAX_BODY_BYTES = 64 * 1024;

const TIMEOUT: CheckResult = Object.freeze({ ok: false, reason: 'timeout' });
const ABORTED: CheckResult = Object.freeze({ ok: false, reason: 'aborted' });
const TCP_OK: CheckResult = Object.freeze({ ok: true, reason: 'connected' });
const WS_OK: CheckResult = Object.freeze({ ok: true, reason: 'ws open' });

type Finish = (result: CheckResult) => void;
type Teardown = () => void;

/**
 * Runs one check. `timeoutMs` bounds the whole exchange (DNS, connect, request,
 * response). `signal` lets the monitor abort a check at once (stop, removal, address
 * change) instead of leaving a socket open until the deadline.
 */
export function runCheck(
  check: HealthCheck,
  target: CheckTarget,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<CheckResult> {
  switch (check.kind) {
    case 'off':
      // Nothing to probe: a disabled check always passes.
      return Promise.resolve({ ok: true, reason: 'check off' });
    case 'tcp':
      return probe(timeoutMs, signal, (finish) => openTcp(target, finish));
    case 'http':
      return probe(timeoutMs, signal, (finish) => openHttp(target, check.path, finish));
    case 'ws':
      return probe(timeoutMs, signal, (finish) => openWs(target, check.path, timeoutMs, finish));
  }
}

/**
 * The shared skeleton: a deadline, an abort hook and a once-only finish that tears the
 * probe down. `open` starts the I/O and returns how to destroy it; it may throw (bad
 * port, malformed path), which becomes a failed result rather than a rejection.
 */
function probe(
  timeoutMs: number,
  signal: AbortSignal | undefined,
  open: (finish: Finish) => Teardown,
): Promise<CheckResult> {
  return new Promise<CheckResult>((resolve) => {
    if (signal?.aborted) {
      resolve(ABORTED);
      return;
    }
    let done = false;
    let teardown: Teardown | null = null;
    const onAbort = (): void => finish(ABORTED);
    const timer = setTimeout(finish, timeoutMs, TIMEOUT);

    function finish(result: CheckResult): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (teardown !== null) teardown();
      resolve(result);
    }

    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      teardown = open(finish);
    } catch (err) {
      finish({ ok: false, reason: describeError(err) });
      return;
    }
    // Nothing in `open` finishes synchronously today, but if it ever did, the socket
    // it returned must still be destroyed.
    if (done) teardown();
  });
}

/** A TCP check reads nothing: the buffer a check's handle is given, never read into. */
const NO_READS = Buffer.alloc(64);

function noReads(): Buffer {
  return NO_READS;
}

function openTcp(target: CheckTarget, finish: Finish): Teardown {
  // On a bare handle where the target is an address (no net.Socket per check: with
  // thousands of upstreams, checks open thousands of connections a second).
  const handle = connectHandle(target.host, target.port, () => false, noReads);
  if (handle !== null) {
    handle.pause();
    handle.on('connect', () => finish(TCP_OK));
    handle.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, reason: describeError(err) }));
    return () => handle.destroy();
  }
  const socket = net.connect({ host: target.host, port: target.port });
  socket.once('connect', () => finish(TCP_OK));
  // Stays attached after finish: a late error on a destroyed socket must not go unhandled.
  socket.on('error', (err) => finish({ ok: false, reason: describeError(err) }));
  return () => socket.destroy();
}

function openHttp(target: CheckTarget, path: string, finish: Finish): Teardown {
  const req = http.request({
    host: target.host,
    port: target.port,
    path,
    method: 'GET',
    // A fresh socket per check: a pooled one would test the pool, not the upstream.
    agent: false,
    setHost: false,
    headers: {
      Host: `${bracketHost(target.host)}:${target.port}`,
      Connection: 'close',
      'User-Agent': USER_AGENT,
    },
  });
  req.on('error', (err) => finish({ ok: false, reason: describeError(err, 'http ') }));
  req.once('response', (res) => {
    const status = res.statusCode ?? 0;
    // 2xx and 3xx pass, as HAProxy's `option httpchk` does by default.
    const result: CheckResult = { ok: status >= 200 && status < 400, reason: `http ${status}` };
    let seen = 0;
    res.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > MAX_BODY_BYTES) finish(result);
    });
    // The status line decided the result; a body cut short does not change it.
    res.on('error', () => finish(result));
    res.once('end', () => finish(result));
    res.once('close', () => finish(result));
  });
  req.end();
  return () => req.destroy();
}

function openWs(target: CheckTarget, path: string, timeoutMs: number, finish: Finish): Teardown {
  const url = `ws://${bracketHost(target.host)}:${target.port}${path}`;
  const ws = new WebSocket(url, {
    // ws's own timer is a socket idle timeout; ours in probe() bounds the whole
    // handshake and, set first with the same delay, fires first.
    handshakeTimeout: timeoutMs,
    perMessageDeflate: false,
    followRedirects: false,
    headers: { 'User-Agent': USER_AGENT },
  });
  ws.once('open', () => finish(WS_OK));
  ws.on('error', (err) => finish({ ok: false, reason: describeError(err, 'ws handshake failed: ') }));
  ws.once('close', () => finish({ ok: false, reason: 'ws handshake failed: closed' }));
  // terminate() destroys the socket without a closing handshake: a check has nothing
  // to say, and waiting for the upstream's close frame would hold the socket longer.
  return () => ws.terminate();
}

/** IPv6 literals need brackets in URLs and Host headers. */
function bracketHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * `connect ECONNREFUSED` for failures to reach the address (connect or DNS), whatever
 * the check kind, so logs group them alike; otherwise `prefix` and the message
 * (`http socket hang up`, `ws handshake failed: Unexpected server response: 200`).
 * Addresses are left out: the monitor logs them next to the upstream's name.
 */
function describeError(err: unknown, prefix = ''): string {
  if (!(err instanceof Error)) return prefix + String(err);
  // With autoSelectFamily, a host with several addresses fails with an AggregateError.
  const first = err instanceof AggregateError && err.errors[0] instanceof Error ? err.errors[0] : err;
  const { code, syscall } = first as NodeJS.ErrnoException;
  if (syscall === 'connect' || syscall === 'getaddrinfo') return `connect ${code ?? first.message}`;
  if (typeof code === 'string' && code.startsWith('HPE_')) return `${prefix}malformed response (${code})`;
  return prefix + (first.message || code || first.name);
}
