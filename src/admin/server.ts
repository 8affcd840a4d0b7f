import { createHash, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { parseHostPort } from '../config/parse.js';
import type { HostPort, ListenerConfig } from '../config/types.js';
import { isUpstreamName, isUpstreamWeight, UPSTREAM_NAME_RULE, UPSTREAM_WEIGHT } from '../config/upstream-rules.js';
import { ERROR_STATUS, errorMessage, MethodError, TetherError, UnknownUpstreamError, type TetherErrorCode } from '../errors.js';
import type { AdminChange } from '../membership/overrides.js';
import type { UpstreamPool } from '../routing/pool.js';
import type { RouteVia } from '../routing/types.js';
import { REBALANCE_DEFAULT_PER_SECOND, REBALANCE_MAX_PER_SECOND, type RebalanceStart } from '../routing/rebalance.js';
import { formatAddress, type Upstream } from '../routing/upstream.js';
import { readJsonBody, sendJson } from './http-util.js';
import { STATS_PAGE_CSP, statsPage } from './page/html.js';
import type { StatsSnapshot } from './page/stats.js';
import type { WorkerView } from './types.js';

/** What the admin API sees of one listener. */
export interface AdminListener {
  readonly name: string;
  readonly config: ListenerConfig;
  readonly pool: UpstreamPool;
  /** POST /rebalance: close, perSecond a second, connections whose key now hashes elsewhere. */
  rebalance(perSecond: number): RebalanceStart;
}

export interface RouteAnswer {
  readonly key: string;
  readonly upstream: string | null;
  readonly via: RouteVia;
  readonly candidates: readonly string[];
}

/** The balancer as the admin API drives it. */
export interface AdminBackend {
  /** Every listener bound and routing. */
  isListening(): boolean;
  isShuttingDown(): boolean;
  listeners(): readonly AdminListener[];
  route(listener: AdminListener, key: string): Promise<RouteAnswer>;
  /**
   * Add, change, remove, drain or undrain an upstream. With a shared store this waits
   * for the store and may throw a TetherError TETHER_ERR_STORE (503, nothing changed).
   */
  changeUpstream(listener: AdminListener, change: AdminChange): Promise<void>;
  /** Prometheus text for GET /metrics: every family, or those named (each must exist). */
  scrape(names?: readonly string[]): Scrape;
  /** Whether `name` is a metric family (GET /metrics?name=). */
  hasMetric(name: string): boolean;
  /** The stats page's data (GET /stats.json). */
  stats(): Promise<StatsSnapshot>;
  /** POST /rebalance: for the whole instance (every worker's connections, at `perSecond` in all). */
  rebalance(listener: AdminListener, perSecond: number): Promise<RebalanceStart>;
  /** GET /workers: the processes that accept and relay (one, without TETHER_WORKERS). */
  workers(): Promise<readonly WorkerView[]>;
}

export interface Scrape {
  readonly contentType: string;
  /**
   * Writes the text a piece at a time, the event loop running between pieces (see
   * Metrics.write); resolves after the last piece.
   */
  write(emit: (text: string) => void): Promise<void>;
}

export interface AdminOptions {
  readonly address: HostPort;
  readonly token: string | null;
  readonly backend: AdminBackend;
  readonly logger: Logger;
}

/**
 * A membership change is answered once the listener routes by it (its table is
 * built, in a worker thread), so a GET /route right after a PUT reflects the PUT.
 * Bounded: a slow or failing build delays the answer at most this long; routing
 * meanwhile passes over upstreams that left and reaches new ones once built.
 */
const SETTLE_WAIT_MS = 5_000;

const UPSTREAM_PATH = /^\/upstreams\/([^/]+)(?:\/(drain|undrain))?$/;
const BEARER = /^bearer +(.*)$/i;

/** Admin API: JSON over HTTP, bound to loopback by default. */
export class AdminServer {
  readonly #server: http.Server;
  readonly #options: AdminOptions;
  readonly #tokenDigest: Buffer | null;

  constructor(options: AdminOptions) {
    this.#options = options;
    this.#tokenDigest = options.token === null ? null : sha256(options.token);
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => this.#fail(res, err));
    });
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
  }

  get port(): number {
    const a = this.#server.address();
    return a && typeof a === 'object' ? a.port : this.#options.address.port;
  }

  get address(): string {
    const a = this.#server.address();
    return a && typeof a === 'object' ? formatAddress(a.address, a.port) : formatAddress(this.#options.address.host, this.#options.address.port);
  }

  listen(): Promise<void> {
    const { host, port } = this.#options.address;
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port }, () => {
        this.#server.removeListener('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const backend = this.#options.backend;

    if (path === '/healthz') {
      const ok = backend.isListening();
      return sendJson(res, ok ? 200 : 503, { status: ok ? 'ok' : 'starting' });
    }
    if (path === '/readyz') return this.#readyz(res, url);

    // The stats page and its data also take ?token=: a browser opening a page
    // cannot send a header (see page/html.ts). No other call does.
    if (path === '/' || path === '/stats.json') {
      if (path === '/' && !this.#authorized(req, url.searchParams.get('token'))) return sendPageUnauthorized(res);
      this.#authorize(req, url.searchParams.get('token'));
      allow(method, 'GET');
      const stats = await backend.stats();
      return path === '/' ? sendPage(res, statsPage(stats)) : sendJson(res, 200, stats);
    }

    this.#authorize(req);

    if (path === '/metrics') {
      allow(method, 'GET');
      // ?name=F (repeatable): only those families, e.g. for a cheap frequent probe.
      const names = url.searchParams.getAll('name');
      const unknown = names.find((name) => !backend.hasMetric(name));
      if (unknown !== undefined) throw new TetherError('TETHER_ERR_NOT_FOUND', `no metric named ${JSON.stringify(unknown)}`);
      const scrape = backend.scrape(names.length > 0 ? names : undefined);
      // Sent as it is written (chunked): each piece is encoded in the turn that wrote
      // it, never the whole text (~2 MB at 5,000 upstreams) in one go. A failure
      // before the first piece is a 500; after it, #fail cuts the response short.
      const head = (): void => {
        if (!res.headersSent) res.writeHead(200, { 'content-type': scrape.contentType, 'cache-control': 'no-store' });
      };
      await scrape.write((text) => {
        head();
        // A client gone mid-scrape: the rest is written to no one (bounded work).
        if (!res.destroyed) res.write(text);
      });
      head();
      res.end();
      return;
    }

    if (path === '/workers') {
      allow(method, 'GET');
      return sendJson(res, 200, await backend.workers());
    }
    if (path === '/upstreams') {
      allow(method, 'GET');
      return sendJson(res, 200, this.#pick(url).pool.list().map(describeUpstream));
    }
    if (path === '/rebalance') {
      allow(method, 'POST');
      const listener = this.#pick(url);
      const body = await readJsonBody(req);
      const perSecond = parsePerSecond(body.perSecond);
      // Decide against the newest membership's table, not one still being built.
      await listener.pool.settled(SETTLE_WAIT_MS);
      return sendJson(res, 200, await backend.rebalance(listener, perSecond));
    }
    if (path === '/route') {
      allow(method, 'GET');
      const key = url.searchParams.get('key');
      if (key === null) throw new TetherError('TETHER_ERR_BAD_REQUEST', 'missing ?key=');
      return sendJson(res, 200, await backend.route(this.#pick(url), key));
    }
    const match = UPSTREAM_PATH.exec(path);
    if (match) return this.#upstreamCall(req, res, url, decodeURIComponent(match[1]!), match[2]);
    throw new TetherError('TETHER_ERR_NOT_FOUND', `no such endpoint: ${method} ${path}`);
  }

  #readyz(res: ServerResponse, url: URL): void {
    const backend = this.#options.backend;
    if (backend.isShuttingDown()) return sendJson(res, 503, { status: 'shutting down' });
    const wanted = url.searchParams.get('listener');
    const listeners = wanted === null ? backend.listeners() : [this.#pick(url)];
    const down = listeners.filter((l) => l.pool.upCount() === 0).map((l) => l.name);
    if (!backend.isListening() || down.length > 0) {
      return sendJson(res, 503, { status: 'not ready', listenersWithoutUpstreams: down });
    }
    sendJson(res, 200, { status: 'ready' });
  }

  async #upstreamCall(req: IncomingMessage, res: ServerResponse, url: URL, name: string, action: string | undefined): Promise<void> {
    const listener = this.#pick(url);
    const pool = listener.pool;
    const method = req.method ?? 'GET';
    const log = this.#options.logger;
    const backend = this.#options.backend;
    if (action === undefined) {
      if (method === 'GET') return sendJson(res, 200, describeUpstream(requireUpstream(pool, name)));
      if (method === 'DELETE') {
        const removed = describeUpstream(requireUpstream(pool, name));
        await backend.changeUpstream(listener, { op: 'delete', upstream: name });
        await pool.settled(SETTLE_WAIT_MS);
        log.info({ listener: listener.name, upstream: name }, 'upstream removed through admin API');
        return sendJson(res, 200, { ...removed, removed: true });
      }
      allow(method, 'PUT');
      const body = await readJsonBody(req);
      if (!isUpstreamName(name)) throw badRequest(`upstream name ${JSON.stringify(name)} is not ${UPSTREAM_NAME_RULE}`);
      const target = parseAddressField(body.address);
      const existing = pool.get(name);
      const weight = parseWeight(body.weight) ?? existing?.weight ?? 1;
      await backend.changeUpstream(listener, { op: 'put', upstream: name, host: target.host, port: target.port, weight });
      await pool.settled(SETTLE_WAIT_MS);
      const created = existing === undefined;
      log.info({ listener: listener.name, upstream: name, address: formatAddress(target.host, target.port), weight, created }, 'upstream set through admin API');
      return sendJson(res, created ? 201 : 200, describeUpstream(requireUpstream(pool, name)));
    }
    allow(method, 'POST');
    const body = await readJsonBody(req);
    requireUpstream(pool, name);
    if (action === 'drain') {
      const deadlineS = parseDeadline(body.deadlineS);
      await backend.changeUpstream(listener, { op: 'drain', upstream: name, deadlineS });
      await pool.settled(SETTLE_WAIT_MS);
      log.info({ listener: listener.name, upstream: name, deadlineS: deadlineS ?? null }, 'upstream draining');
      return sendJson(res, 200, describeUpstream(requireUpstream(pool, name)));
    }
    await backend.changeUpstream(listener, { op: 'undrain', upstream: name });
    await pool.settled(SETTLE_WAIT_MS);
    log.info({ listener: listener.name, upstream: name }, 'upstream undrained');
    sendJson(res, 200, describeUpstream(requireUpstream(pool, name)));
  }

  #pick(url: URL): AdminListener {
    const listeners = this.#options.backend.listeners();
    const wanted = url.searchParams.get('listener');
    if (wanted === null) {
      const first = listeners[0];
      if (!first) throw new TetherError('TETHER_ERR_NO_LISTENER', 'no listener is running');
      return first;
    }
    const found = listeners.find((l) => l.name === wanted);
    if (!found) throw new TetherError('TETHER_ERR_NOT_FOUND', `no listener named ${JSON.stringify(wanted)}`);
    return found;
  }

  /** `queryToken`: the ?token= value, passed only by the calls that accept one. */
  #authorize(req: IncomingMessage, queryToken: string | null = null): void {
    if (!this.#authorized(req, queryToken)) {
      throw new TetherError('TETHER_ERR_UNAUTHORIZED', 'missing or wrong bearer token');
    }
  }

  #authorized(req: IncomingMessage, queryToken: string | null = null): boolean {
    if (this.#tokenDigest === null) return true;
    // The scheme is case-insensitive and may be followed by several spaces (RFC 9110 11.1, 11.4).
    const bearer = BEARER.exec(req.headers.authorization ?? '');
    const given = bearer !== null ? bearer[1]!.trim() : (queryToken ?? '');
    // Compare digests: equal lengths, and no timing signal about the token's length.
    return given !== '' && timingSafeEqual(sha256(given), this.#tokenDigest);
  }

  #fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof TetherError) {
      if (err.status === 401) res.setHeader('www-authenticate', 'Bearer realm="tether"');
      if (err instanceof MethodError) res.setHeader('allow', err.allow);
      return sendJson(res, err.status, { error: err.message, code: err.code });
    }
    this.#options.logger.error({ err }, 'admin request failed');
    sendJson(res, ERROR_STATUS.TETHER_ERR_INTERNAL, { error: 'internal error', code: 'TETHER_ERR_INTERNAL' satisfies TetherErrorCode });
  }
}

export function describeUpstream(u: Upstream): {
  name: string;
  address: string;
  weight: number;
  state: 'up' | 'down' | 'draining';
  active: number;
  total: number;
} {
  // elsewhere: with TETHER_WORKERS, the workers' connections as the control plane last heard (0 otherwise).
  return { name: u.name, address: u.address, weight: u.weight, state: u.state, active: u.active + u.elsewhere, total: u.total };
}

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': STATS_PAGE_CSP,
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};

function sendPage(res: ServerResponse, html: string): void {
  res.writeHead(200, { ...PAGE_HEADERS, 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

/** A person at a browser gets a sentence, not JSON. Nothing from the request is echoed. */
function sendPageUnauthorized(res: ServerResponse): void {
  const text = '401 Unauthorized: TETHER_ADMIN_TOKEN is set. Open the stats page as /?token=TOKEN.\n';
  res.writeHead(401, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'www-authenticate': 'Bearer realm="tether"',
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}

function requireUpstream(pool: UpstreamPool, name: string): Upstream {
  const upstream = pool.get(name);
  if (!upstream) throw new UnknownUpstreamError(name);
  return upstream;
}

function allow(method: string, expected: string): void {
  if (method !== expected) throw new MethodError(expected);
}

function badRequest(message: string): TetherError {
  return new TetherError('TETHER_ERR_BAD_REQUEST', message);
}

function parseAddressField(value: unknown): HostPort {
  if (typeof value !== 'string') throw badRequest('address: expected "host:port"');
  try {
    return parseHostPort('address', value);
  } catch (err) {
    throw badRequest(errorMessage(err));
  }
}

function parseWeight(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isUpstreamWeight(value)) {
    throw badRequest(`weight: ${JSON.stringify(value)} is not an integer from ${UPSTREAM_WEIGHT.min} to ${UPSTREAM_WEIGHT.max}`);
  }
  return value;
}

function parseDeadline(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 86_400 * 7) {
    throw badRequest(`deadlineS: ${JSON.stringify(value)} is not a number of seconds from 0 to 604800`);
  }
  return value;
}

function parsePerSecond(value: unknown): number {
  if (value === undefined || value === null) return REBALANCE_DEFAULT_PER_SECOND;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > REBALANCE_MAX_PER_SECOND) {
    throw badRequest(`perSecond: ${JSON.stringify(value)} is not a number above 0 and at most ${REBALANCE_MAX_PER_SECOND}`);
  }
  return value;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
