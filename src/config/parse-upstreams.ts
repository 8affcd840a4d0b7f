/**
 * Upstream lists: `[name=]host:port[*weight]` items, comma-separated, names unique
 * (TETHER_UPSTREAMS, a config file's upstreams). Names and weights follow
 * upstream-rules.ts, as the admin API and the shared store do.
 */
import { ConfigError } from '../errors.js';
import { EXPECTED, formatHostPort, parseHostPort, splitHostPort, splitList } from './parse.js';
import type { HostPort, UpstreamSpec } from './types.js';
import { isUpstreamName, isUpstreamWeight, UPSTREAM_WEIGHT } from './upstream-rules.js';

export function parseUpstreamName(variable: string, value: string): string {
  if (!isUpstreamName(value)) throw new ConfigError(variable, value, EXPECTED.upstreamName);
  return value;
}

/** An upstream's address: like host:port but a host is required. */
export function parseUpstreamAddress(variable: string, value: string): HostPort {
  return parseHostPort(variable, value);
}

/** One `[name=]host:port[*weight]`. */
export function parseUpstream(variable: string, item: string): UpstreamSpec {
  const text = item.trim();
  const fail = (detail?: string): never => {
    throw new ConfigError(variable, item, detail === undefined ? EXPECTED.upstream : `${EXPECTED.upstream} with ${detail}`);
  };
  const eq = text.indexOf('=');
  const name = eq < 0 ? undefined : text.slice(0, eq).trim();
  let rest = eq < 0 ? text : text.slice(eq + 1).trim();
  let weight = 1;
  const star = rest.lastIndexOf('*');
  if (star >= 0) {
    const weightText = rest.slice(star + 1).trim();
    rest = rest.slice(0, star).trim();
    const w = /^\d{1,4}$/.test(weightText) ? Number(weightText) : Number.NaN;
    if (!isUpstreamWeight(w)) fail(`a weight from ${UPSTREAM_WEIGHT.min} to ${UPSTREAM_WEIGHT.max}`);
    weight = w;
  }
  const address = splitHostPort(rest);
  if (typeof address === 'string') {
    switch (address) {
      case 'port':
        return fail('a port from 1 to 65535');
      case 'ipv6':
        return fail('an IPv6 host in brackets, e.g. [::1]:5432');
      case 'host':
        return fail('a valid host name or IP address');
      case 'nohost':
        return fail('a host before the port');
      default:
        return fail();
    }
  }
  const upstream = { name: name ?? formatHostPort(address), host: address.host, port: address.port, weight };
  if (!isUpstreamName(upstream.name)) fail(EXPECTED.upstreamName);
  return upstream;
}

/** Throws on the first name used twice, naming it. */
export function checkUniqueUpstreams(upstreams: readonly UpstreamSpec[], variable: string): void {
  const index = duplicateIndex(upstreams.map((u) => u.name));
  if (index >= 0) throw new ConfigError(variable, upstreams[index]!.name, EXPECTED.uniqueUpstream);
}

/** Index of the first item that repeats an earlier one, or -1. */
export function duplicateIndex(names: readonly string[]): number {
  const seen = new Set<string>();
  for (let i = 0; i < names.length; i++) {
    if (seen.has(names[i]!)) return i;
    seen.add(names[i]!);
  }
  return -1;
}

/** `db1=10.0.0.1:5432*2, 10.0.0.2:5432`: at least one, names unique. */
export function parseUpstreams(variable: string, value: string): UpstreamSpec[] {
  const items = splitList(value);
  if (items.length === 0) throw new ConfigError(variable, value, EXPECTED.upstreams);
  const upstreams = items.map((item) => parseUpstream(variable, item));
  checkUniqueUpstreams(upstreams, variable);
  return upstreams;
}

export function formatUpstream(upstream: UpstreamSpec): string {
  const address = formatHostPort(upstream);
  const name = upstream.name === address ? '' : `${upstream.name}=`;
  const weight = upstream.weight === 1 ? '' : `*${upstream.weight}`;
  return `${name}${address}${weight}`;
}
