import type { KeySource } from '../../config/types.js';
import type { KeySourceName } from '../../routing/types.js';
import { compilePrefix, readMqttClientId, readMqttUsername, readRdpCookie, readSni, type InspectReader } from './inspect/index.js';

/** A link of a tcp key chain that reads the connection's first bytes. */
export interface FirstBytesLink {
  readonly read: InspectReader;
  readonly source: KeySourceName;
}

/**
 * A TETHER_KEY chain as tcp mode reads it, built once per configuration: the
 * first-bytes links before the first `source-ip`, in order, and whether `source-ip`
 * ends them. Links after `source-ip` are never reached; http-only links yield nothing
 * here and are left out. No links: the connection is routed at once, without waiting
 * for a byte.
 */
export interface TcpKeyChain {
  readonly links: readonly FirstBytesLink[];
  readonly sourceIp: boolean;
}

export function tcpKeyChain(chain: readonly KeySource[]): TcpKeyChain {
  const links: FirstBytesLink[] = [];
  for (const source of chain) {
    if (source.kind === 'source-ip') return { links, sourceIp: true };
    const link = firstBytesLink(source);
    if (link !== null) links.push(link);
  }
  return { links, sourceIp: false };
}

function firstBytesLink(source: KeySource): FirstBytesLink | null {
  switch (source.kind) {
    case 'sni':
      return { read: readSni, source: 'sni' };
    case 'mqtt':
      return source.field === 'client-id'
        ? { read: readMqttClientId, source: 'mqtt:client-id' }
        : { read: readMqttUsername, source: 'mqtt:username' };
    case 'rdp-cookie':
      return { read: readRdpCookie, source: 'rdp-cookie' };
    case 'prefix':
      return { read: compilePrefix(source.source), source: 'prefix' };
    default:
      return null;
  }
}
