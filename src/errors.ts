/**
 * Errors with stable codes (TETHER_ERR_*), listed in the README, and the HTTP status
 * the admin API answers each with: one table, one class (TetherError) and its
 * subclasses. Codes survive where classes do not (worker threads, logs, JSON answers).
 */
export const ERROR_STATUS = {
  /** A bad setting (ConfigError); exit code 2. */
  TETHER_ERR_CONFIG: 400,
  /** A listener or the admin API could not bind; exit code 1. */
  TETHER_ERR_LISTEN: 500,
  /** No upstream of that name. */
  TETHER_ERR_UNKNOWN_UPSTREAM: 404,
  /** Admin API: no such endpoint, listener or metric family. */
  TETHER_ERR_NOT_FOUND: 404,
  /** Admin API: a body or parameter that is not valid (a body too large: 413). */
  TETHER_ERR_BAD_REQUEST: 400,
  /** Admin API: missing or wrong bearer token. */
  TETHER_ERR_UNAUTHORIZED: 401,
  /** Admin API: wrong method (the answer's Allow header names the right one). */
  TETHER_ERR_METHOD: 405,
  /** Admin API: no listener is running yet. */
  TETHER_ERR_NO_LISTENER: 503,
  /** The shared store did not take a membership change (nothing changed). */
  TETHER_ERR_STORE: 503,
  /** A lookup table could not be built in a worker thread; logged and retried. */
  TETHER_ERR_RING_BUILD: 500,
  /** Admin API: anything else that went wrong (logged). */
  TETHER_ERR_INTERNAL: 500,
} as const;

export type TetherErrorCode = keyof typeof ERROR_STATUS;

export class TetherError extends Error {
  readonly code: TetherErrorCode;
  /** The HTTP status the admin API answers with: ERROR_STATUS[code] unless given. */
  readonly status: number;
  constructor(code: TetherErrorCode, message: string, status: number = ERROR_STATUS[code]) {
    super(message);
    this.name = 'TetherError';
    this.code = code;
    this.status = status;
  }
}

/** A method the endpoint does not take: `allow` is the one it does. */
export class MethodError extends TetherError {
  readonly allow: string;
  constructor(allow: string) {
    super('TETHER_ERR_METHOD', `only ${allow}`);
    this.name = 'MethodError';
    this.allow = allow;
  }
}

/** The message of anything thrown: an Error's own, anything else as text. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Anything thrown, as an Error (a non-Error wrapped, its text the message). */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
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

/**
 * Rebuilds an error sent as `{ code, message }` data from another thread (an Error
 * subclass posted between threads arrives as a plain Error, its code lost).
 */
export function errorFromData(code: string, message: string): TetherError {
  if (code === 'TETHER_ERR_RING_BUILD' || !Object.hasOwn(ERROR_STATUS, code)) return new RingBuildError(message);
  return new TetherError(code as TetherErrorCode, message);
}
