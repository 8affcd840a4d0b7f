/**
 * Key chains (TETHER_KEY) and learn rules (TETHER_LEARN): comma lists whose items may
 * hold a regex, and regexes may hold commas (`a{1,3}`). A comma ends an item only when
 * what follows it starts a recognised item (`source-ip`, `header:`, `cookie:`,
 * `query:`, `path:`, `sni`, `mqtt:`, `rdp-cookie`, `prefix:`; for learn rules
 * `header:`, `set-cookie:`); any other piece after
 * a regex item is part of that regex. So a regex cannot contain `,header:` and the
 * like: use a JSON array in the config file for that.
 */
import { ConfigError } from '../errors.js';
import { EXPECTED } from './parse.js';
import type { KeySource, LearnRule } from './types.js';

/**
 * Split a comma list whose regex items may contain commas. `starts` are the prefixes
 * that begin an item; `regexItem` tells which items swallow following pieces that
 * begin no item.
 */
function splitRegexList(value: string, starts: readonly string[], regexItem: (item: string) => boolean): string[] {
  const items: string[] = [];
  for (const piece of value.split(',')) {
    const head = piece.trimStart();
    const last = items.length - 1;
    if (last >= 0 && regexItem(items[last]!.trimStart()) && !starts.some((s) => head.startsWith(s))) {
      items[last] += `,${piece}`;
    } else {
      items.push(piece);
    }
  }
  return items.map((item) => item.trim()).filter((item) => item !== '');
}

const KEY_STARTS = ['source-ip', 'header:', 'cookie:', 'query:', 'path:', 'sni', 'mqtt:', 'rdp-cookie', 'prefix:'] as const;
const LEARN_STARTS = ['header:', 'set-cookie:'] as const;

/** `source-ip,path:^/a{1,3}/(x),header:X` -> `source-ip`, `path:^/a{1,3}/(x)`, `header:X`. */
export function splitKeyChain(value: string): string[] {
  return splitRegexList(value, KEY_STARTS, (item) => item.startsWith('path:') || item.startsWith('prefix:'));
}

/** `header:Location=/f/([^,]+),set-cookie:sid` -> two rules. */
export function splitLearnRules(value: string): string[] {
  return splitRegexList(value, LEARN_STARTS, (item) => item.startsWith('header:'));
}



/** RFC 9110 token: header names, cookie names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const QUERY_NAME = /^[^\s&=#]+$/;

/** Compile a regex that must have at least one capture group; null when it cannot. */
function captureRegex(source: string): RegExp | null {
  let pattern: RegExp;
  try {
    pattern = new RegExp(source);
  } catch {
    return null;
  }
  // Matching the empty string against `(?:src)|` reveals the group count.
  const groups = new RegExp(`(?:${source})|`).exec('')!.length - 1;
  return groups >= 1 ? pattern : null;
}

export function parseKeySource(variable: string, item: string): KeySource {
  const text = item.trim();
  if (text === 'source-ip') return { kind: 'source-ip' };
  if (text === 'sni') return { kind: 'sni' };
  if (text === 'rdp-cookie') return { kind: 'rdp-cookie' };
  const colon = text.indexOf(':');
  const kind = colon < 0 ? '' : text.slice(0, colon);
  const arg = text.slice(colon + 1);
  switch (kind) {
    case 'header':
      if (TOKEN.test(arg)) return { kind: 'header', name: arg.toLowerCase() };
      throw new ConfigError(variable, item, `header:NAME with NAME an HTTP header name`);
    case 'cookie':
      if (TOKEN.test(arg)) return { kind: 'cookie', name: arg };
      throw new ConfigError(variable, item, `cookie:NAME with NAME a cookie name`);
    case 'query':
      if (QUERY_NAME.test(arg)) return { kind: 'query', name: arg };
      throw new ConfigError(variable, item, `query:NAME with NAME a query parameter name`);
    case 'path': {
      const pattern = captureRegex(arg);
      if (pattern !== null) return { kind: 'path', pattern, source: arg };
      throw new ConfigError(variable, item, 'path:REGEX with a valid regular expression that has a capture group');
    }
    case 'mqtt':
      if (arg === 'client-id' || arg === 'username') return { kind: 'mqtt', field: arg };
      throw new ConfigError(variable, item, 'mqtt:client-id or mqtt:username');
    case 'prefix':
      // Compiled again by the tcp listener (proxy/tcp/inspect/prefix.ts); checked here.
      if (captureRegex(arg) !== null) return { kind: 'prefix', source: arg };
      throw new ConfigError(variable, item, 'prefix:REGEX with a valid regular expression that has a capture group');
    default:
      throw new ConfigError(variable, item, EXPECTED.keySource);
  }
}

/** The fallback chain: at least one source. */
export function parseKeyChain(variable: string, value: string): KeySource[] {
  const items = splitKeyChain(value);
  if (items.length === 0) throw new ConfigError(variable, value, EXPECTED.keyChain);
  return items.map((item) => parseKeySource(variable, item));
}

export function formatKeySource(source: KeySource): string {
  switch (source.kind) {
    case 'source-ip':
    case 'sni':
    case 'rdp-cookie':
      return source.kind;
    case 'mqtt':
      return `mqtt:${source.field}`;
    case 'path':
    case 'prefix':
      return `${source.kind}:${source.source}`;
    default:
      return `${source.kind}:${source.name}`;
  }
}

export function parseLearnRule(variable: string, item: string): LearnRule {
  const text = item.trim();
  if (text.startsWith('set-cookie:')) {
    const name = text.slice('set-cookie:'.length);
    if (TOKEN.test(name)) return { kind: 'set-cookie', name };
    throw new ConfigError(variable, item, 'set-cookie:NAME with NAME a cookie name');
  }
  if (text.startsWith('header:')) {
    const rest = text.slice('header:'.length);
    const eq = rest.indexOf('=');
    const name = eq < 0 ? rest : rest.slice(0, eq);
    const source = eq < 0 ? '' : rest.slice(eq + 1);
    const pattern = TOKEN.test(name) ? captureRegex(source) : null;
    if (pattern !== null) return { kind: 'header', name: name.toLowerCase(), pattern, source };
    throw new ConfigError(
      variable,
      item,
      'header:NAME=REGEX with NAME an HTTP header name and a valid REGEX that has a capture group',
    );
  }
  throw new ConfigError(variable, item, EXPECTED.learnRule);
}

/** Possibly empty; `none` is the empty list. */
export function parseLearnRules(variable: string, value: string): LearnRule[] {
  if (value.trim() === 'none') return [];
  return splitLearnRules(value).map((item) => parseLearnRule(variable, item));
}

export function formatLearnRule(rule: LearnRule): string {
  return rule.kind === 'header' ? `header:${rule.name}=${rule.source}` : `set-cookie:${rule.name}`;
}
