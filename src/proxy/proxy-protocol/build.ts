/** The PROXY header tether sends upstream (header.ts has the format). */
import { formatIPv4, formatIPv6, isMappedIPv4, parseIPv4, parseIPv6 } from '../../net/address.js';
import {
  V2_CMD_LOCAL,
  V2_CMD_PROXY,
  V2_FAM_INET,
  V2_FAM_INET6,
  V2_FAM_UNSPEC,
  V2_SIGNATURE,
  V2_TRANS_STREAM,
  V2_VERSION,
  type Endpoint,
  type ProxyVersion,
} from './header.js';

// ------------------------------------------------------------------- building

// Scratch for address bytes: building is synchronous, so one buffer serves all calls.
const scratch = new Uint8Array(32);

/** Writes the 16-byte (IPv4-mapped for IPv4) form at `offset`: 4, 6, or 0 if not an address. */
function addressFamily(address: string, offset: number): 0 | 4 | 6 {
  const v4 = parseIPv4(address);
  if (v4 >= 0) {
    scratch.fill(0, offset, offset + 10);
    scratch[offset + 10] = 0xff;
    scratch[offset + 11] = 0xff;
    scratch[offset + 12] = v4 >>> 24;
    scratch[offset + 13] = (v4 >>> 16) & 0xff;
    scratch[offset + 14] = (v4 >>> 8) & 0xff;
    scratch[offset + 15] = v4 & 0xff;
    return 4;
  }
  const percent = address.indexOf('%'); // a link-local zone means nothing to the peer
  if (!parseIPv6(percent < 0 ? address : address.slice(0, percent), scratch, offset)) return 0;
  return isMappedIPv4(scratch, offset) ? 4 : 6;
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

/**
 * The header to send before a connection's first byte. `source` is the client,
 * `destination` the address it connected to. An IPv4-mapped address counts as IPv4;
 * when the two families differ the IPv4 one is sent mapped, as TCP6 (as HAProxy
 * does). Endpoints that are not IP addresses give `PROXY UNKNOWN` (v1) or a LOCAL
 * header (v2), which tell the upstream to use the connection's own addresses.
 */
export function buildProxyHeader(version: ProxyVersion, source: Endpoint, destination: Endpoint): Buffer {
  const sf = addressFamily(source.address, 0);
  const df = addressFamily(destination.address, 16);
  const known = sf !== 0 && df !== 0 && validPort(source.port) && validPort(destination.port);
  const family = !known ? 0 : sf === 4 && df === 4 ? 4 : 6;
  if (version === 'v1') {
    if (family === 0) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    const line =
      family === 4
        ? `PROXY TCP4 ${formatIPv4(scratch, 12)} ${formatIPv4(scratch, 28)} ${source.port} ${destination.port}\r\n`
        : `PROXY TCP6 ${formatIPv6(scratch, 0)} ${formatIPv6(scratch, 16)} ${source.port} ${destination.port}\r\n`;
    return Buffer.from(line, 'latin1');
  }
  const addressBytes = family === 4 ? 12 : family === 6 ? 36 : 0;
  const header = Buffer.allocUnsafe(16 + addressBytes);
  V2_SIGNATURE.copy(header, 0);
  if (family === 0) {
    header[12] = V2_VERSION | V2_CMD_LOCAL;
    header[13] = (V2_FAM_UNSPEC << 4) | 0;
    header.writeUInt16BE(0, 14);
    return header;
  }
  header[12] = V2_VERSION | V2_CMD_PROXY;
  header[13] = ((family === 4 ? V2_FAM_INET : V2_FAM_INET6) << 4) | V2_TRANS_STREAM;
  header.writeUInt16BE(addressBytes, 14);
  if (family === 4) {
    header.set(scratch.subarray(12, 16), 16);
    header.set(scratch.subarray(28, 32), 20);
    header.writeUInt16BE(source.port, 24);
    header.writeUInt16BE(destination.port, 26);
  } else {
    header.set(scratch, 16);
    header.writeUInt16BE(source.port, 48);
    header.writeUInt16BE(destination.port, 50);
  }
  return header;
}

// -------------------------------------------------------------------- parsing
