/**
 * Errors with stable codes (TETHER_ERR_*), listed in the README.
 * Codes survive where classes do not (worker threads, logs, JSON answers).
 */
export type TetherErrorCode =
  | 'TETHER_ERR_CONFIG'
  | 'TETHER_ERR_NO_UPSTREAM'
  | 'TETHER_ERR_CONNECT'
  | 'TETHER_ERR_UNKNOWN_UPSTREAM'
  | 'TETHER_ERR_BAD_REQUEST'
  | 'TETHER_ERR_LISTEN'
  | 'TETHER_ERR_STORE'
  | 'TETHER_ERR_RING_BUILD';

export class TetherError extends Error {
  readonly code: TetherErrorCode;
  constructor(code: TetherErrorCode, message: string) {
    super(message);
    this.name = 'TetherError';
    this.code = code;
  }
}

/** A bad setting: names the variable, the value and what was expected. */
export class ConfigError extends TetherError {
  readonly variable: string;
  readonly value: unknown;
  readonly expected: string;
  constructor(variable: string, value: unknown, expected: string) {
    super('TETHER_ERR_CONFIG', `${variable}: ${formatValue(value)} is not ${expected}`);
    this.name = 'ConfigError';
    this.variable = variable;
    this.value = value;
    this.expected = expected;
  }
}

function formatValue(value: unknown): string {
  if (value === undefined) return '(unset)';
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  const clipped = text.length > 120 ? `${text.slice(0, 117)}...` : text;
  return JSON.stringify(clipped);
}

/** Something the admin API or a caller asked for that does not exist. */
export class UnknownUpstreamError extends TetherError {
  constructor(name: string) {
    super('TETHER_ERR_UNKNOWN_UPSTREAM', `no upstream named ${JSON.stringify(name)}`);
    this.name = 'UnknownUpstreamError';
  }
}

export class ListenError extends TetherError {
  constructor(address: string, cause: Error) {
    super('TETHER_ERR_LISTEN', `cannot listen on ${address}: ${cause.message}`);
    this.name = 'ListenError';
  }
}

/** The shared store did not take a membership change (admin API: 503, nothing changed). */
export class StoreError extends TetherError {
  constructor(message: string) {
    super('TETHER_ERR_STORE', message);
    this.name = 'StoreError';
  }
}

/**
 * A lookup table could not be built in a worker thread (the worker crashed, could not
 * load, or threw something that is not a TetherError). The pool logs it, keeps routing
 * on the table it has, and retries.
 */
export class RingBuildError extends TetherError {
  constructor(message: string) {
    super('TETHER_ERR_RING_BUILD', message);
    this.name = 'RingBuildError';
  }
}

const CODES: ReadonlySet<string> = new Set<TetherErrorCode>([
  'TETHER_ERR_CONFIG',
  'TETHER_ERR_NO_UPSTREAM',
  'TETHER_ERR_CONNECT',
  'TETHER_ERR_UNKNOWN_UPSTREAM',
  'TETHER_ERR_BAD_REQUEST',
  'TETHER_ERR_LISTEN',
  'TETHER_ERR_STORE',
  'TETHER_ERR_RING_BUILD',
]);

/**
 * Rebuilds an error sent as `{ code, message }` data from another thread (an Error
 * subclass posted between threads arrives as a plain Error, its code lost).
 */
export function errorFromData(code: string, message: string): TetherError {
  if (code === 'TETHER_ERR_RING_BUILD' || !CODES.has(code)) return new RingBuildError(message);
  return new TetherError(code as TetherErrorCode, message);
}
