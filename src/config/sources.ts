/** Where settings come from: environment variables (names, values, unknown ones warned about) and the JSON file TETHER_CONFIG names (read, parsed, its errors located). */
import { readFileSync } from 'node:fs';
import { ConfigError, errorMessage } from '../errors.js';
import { ConfigFileError, formatLocation } from './errors.js';
import {
  LISTENER_SETTING_KEYS,
  PROCESS_SETTING_KEYS,
  closest,
  envSchema,
  fileSchema,
  firstProblem,
  type EnvSettings,
  type FileSettings,
  type ListenerSettingKey,
  type ProcessSettingKey,
} from './schema.js';

export type SettingKey = ListenerSettingKey | ProcessSettingKey;

/** `stickyTtlS` -> `TETHER_STICKY_TTL_S`. */
export function envName(key: SettingKey): string {
  return `TETHER_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/**
 * Variables read elsewhere, not settings: TETHER_CONFIG names the file;
 * TETHER_NATIVE_HASH=0 turns off the native and WebAssembly hashes (hashing/hash.ts).
 */
const OTHER_VARIABLES: readonly string[] = ['TETHER_CONFIG', 'TETHER_NATIVE_HASH'];

/** Every variable tether reads. */
export const ENV_VARIABLES: readonly string[] = [
  ...OTHER_VARIABLES,
  ...[...LISTENER_SETTING_KEYS, ...PROCESS_SETTING_KEYS].map(envName),
].sort();

const ENV_KEYS = new Map<string, SettingKey>(
  [...LISTENER_SETTING_KEYS, ...PROCESS_SETTING_KEYS].map((key) => [envName(key), key]),
);

export function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

export function defined<T extends object, K extends keyof T>(source: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}

/**
 * Read and validate a JSON settings file. `variable` names it in errors,
 * `shown` is the path as the user wrote it.
 */
export function readSettingsFile(variable: string, path: string, shown: string): FileSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(variable, shown, `a readable JSON file (${describeFsError(error)})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new ConfigError(variable, shown, `valid JSON (${describeJsonError(error, text.replace(/^\uFEFF/, ''))})`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    const kind = Array.isArray(data) ? 'an array' : data === null ? 'null' : `a ${typeof data}`;
    throw new ConfigError(variable, shown, `a JSON object of settings (it holds ${kind})`);
  }
  const result = fileSchema.safeParse(data, { reportInput: true });
  if (!result.success) {
    const problem = firstProblem(result.error);
    throw new ConfigFileError(variable, formatLocation(problem.path), problem.value, problem.expected);
  }
  return result.data;
}

export function readEnv(env: NodeJS.ProcessEnv, warnings: string[]): EnvSettings {
  const raw: Record<string, string> = {};
  for (const [name, key] of ENV_KEYS) {
    const value = envValue(env, name);
    if (value !== undefined) raw[key] = value;
  }
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('TETHER_') || OTHER_VARIABLES.includes(name) || ENV_KEYS.has(name)) continue;
    const guess = closest(name, ENV_VARIABLES);
    warnings.push(`${name} is not a known variable${guess === undefined ? '' : ` (did you mean ${guess}?)`}; ignored`);
  }
  const result = envSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const problem = firstProblem(result.error);
  const key = String(problem.path[0]) as SettingKey;
  // A list's complaint quotes the bad item; anything else quotes the variable's text.
  const value = typeof problem.value === 'string' ? problem.value : raw[key];
  throw new ConfigError(envName(key), value, problem.expected);
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return errorMessage(error);
  }
}

/** V8's message without the source excerpt it may quote, plus line and column. */
function describeJsonError(error: unknown, text: string): string {
  const message = (errorMessage(error))
    .replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, '')
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/\s+/g, ' ')
    .slice(0, 120);
  const offset = jsonErrorOffset(text);
  if (offset < 0) return message;
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `${message} at line ${line} column ${column}`;
}

/**
 * Offset of the first character that makes `text` invalid JSON, or -1. V8 gives a
 * position for some errors only; people want a line for all of them.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const fail = (): never => {
    throw new JsonStop(i);
  };
  const space = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const string = (): void => {
    i++;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c === 0x5c) {
        const next = text[i + 1];
        if (next === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail();
          i += 6;
        } else if (next !== undefined && '"\\/bfnrt'.includes(next)) {
          i += 2;
        } else {
          fail();
        }
        continue;
      }
      if (c < 0x20) fail();
      i++;
    }
    fail();
  };
  const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      space();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (c === '{') {
          space();
          if (text[i] !== '"') fail();
          string();
          space();
          if (text[i] !== ':') fail();
          i++;
        }
        value();
        space();
        if (text[i] === ',') i++;
        else if (text[i] === close) {
          i++;
          return;
        } else fail();
      }
    }
    if (c === '"') return string();
    for (const literal of ['true', 'false', 'null']) {
      if (c !== literal[0]) continue;
      let j = 0;
      while (j < literal.length && text[i + j] === literal[j]) j++;
      i += j;
      if (j < literal.length) fail();
      return;
    }
    number.lastIndex = i;
    if (number.exec(text) === null) fail();
    i = number.lastIndex;
  };
  try {
    value();
    space();
    if (i < text.length) fail();
    return -1;
  } catch (error) {
    return error instanceof JsonStop ? error.offset : -1;
  }
}

class JsonStop {
  constructor(readonly offset: number) {}
}
