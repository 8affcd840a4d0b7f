import type { KeySource } from '../config/types.js';
import type { KeySourceName, RequestHead } from './types.js';

export type { RequestHead } from './types.js';

export interface FoundKey {
  readonly key: string;
  readonly source: KeySourceName;
}

/** A TETHER_KEY chain made into one function (keyChain): the request's key, or null. */
export type KeyChain = (head: RequestHead, clientAddress: string) => FoundKey | null;

/**
 * The chain's function, built once per configuration: what each link reads is decided
 * here, not per request. The first link that yields a value gives the key; null when
 * none does (then the request is balanced by power of two choices). Empty values
 * count as absent, so a client cannot pin itself with `?sid=`.
 */
export function keyChain(chain: readonly KeySource[]): KeyChain {
  const links = chain.map(keyLink);
  return (head, clientAddress) => {
    for (const link of links) {
      const found = link(head, clientAddress);
      if (found !== null) return found;
    }
    return null;
  };
}

function keyLink(source: KeySource): KeyChain {
  switch (source.kind) {
    case 'source-ip':
      return (_head, clientAddress) => ({ key: clientAddress, source: 'source-ip' });
    case 'header': {
      const name = source.name;
      return (head) => found(head.values(name)[0] ?? null, 'header');
    }
    case 'cookie': {
      const name = source.name;
      return (head) => found(cookieValue(head.values('cookie'), name), 'cookie');
    }
    case 'query': {
      const name = source.name;
      return (head) => found(queryValue(head.target, name), 'query');
    }
    case 'path': {
      const pattern = source.pattern;
      return (head) => {
        const match = pattern.exec(head.target);
        return found(match === null ? null : (match[1] ?? match[0]), 'path');
      };
    }
    default:
      // First-bytes sources (sni, mqtt:, ...) read tcp connections, not requests.
      return noKey;
  }
}

function noKey(): null {
  return null;
}

function found(value: string | null, source: KeySourceName): FoundKey | null {
  return value !== null && value !== '' ? { key: value, source } : null;
}

/** Each configured chain's function, made on its first request. */
const chains = new WeakMap<readonly KeySource[], KeyChain>();

/**
 * The first value the TETHER_KEY chain yields for a request, or null: keyChain(chain)
 * applied, the function built once for each chain (a configuration's, kept until
 * reload) rather than per request.
 */
export function requestKey(chain: readonly KeySource[], head: RequestHead, clientAddress: string): FoundKey | null {
  let fn = chains.get(chain);
  if (fn === undefined) {
    fn = keyChain(chain);
    chains.set(chain, fn);
  }
  return fn(head, clientAddress);
}

/**
 * A cookie's value from Cookie headers (`a=1; b=2`), the first occurrence winning
 * (RFC 6265 5.4: the most specific path is sent first). Surrounding double quotes
 * are part of the syntax, not of the value.
 */
export function cookieValue(headers: readonly string[] | undefined, name: string): string | null {
  if (headers === undefined || headers.length === 0) return null;
  for (const header of headers) {
    let start = 0;
    while (start < header.length) {
      let end = header.indexOf(';', start);
      if (end < 0) end = header.length;
      const eq = header.indexOf('=', start);
      if (eq > start && eq < end && header.slice(start, eq).trim() === name) {
        return unquote(header.slice(eq + 1, end).trim());
      }
      start = end + 1;
    }
  }
  return null;
}

/**
 * A query parameter's first value, decoded as URLSearchParams decodes it (`+` is a
 * space). A malformed percent-escape yields the raw text rather than an error: a
 * hostile query must not stop routing.
 */
export function queryValue(url: string, name: string): string | null {
  const q = url.indexOf('?');
  if (q < 0) return null;
  const hash = url.indexOf('#', q);
  const end = hash < 0 ? url.length : hash;
  let start = q + 1;
  while (start < end) {
    let amp = url.indexOf('&', start);
    if (amp < 0 || amp > end) amp = end;
    const eq = url.indexOf('=', start);
    const nameEnd = eq >= 0 && eq < amp ? eq : amp;
    if (decode(url.slice(start, nameEnd)) === name) {
      return nameEnd === amp ? '' : decode(url.slice(nameEnd + 1, amp));
    }
    start = amp + 1;
  }
  return null;
}

function decode(text: string): string {
  if (text.indexOf('%') < 0 && text.indexOf('+') < 0) return text;
  const spaced = text.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}

function unquote(value: string): string {
  return value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34 ? value.slice(1, -1) : value;
}
