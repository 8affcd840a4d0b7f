import net from 'node:net';
import { HandleSocket, handleConnectsAvailable, handlesInUse } from '../net/handle-socket.js';
import type { Upstream } from '../routing/upstream.js';
import { nextReadBuffer, relaySocketOptions, type RelaySocket } from './relay.js';

/**
 * A relayed connection to an upstream, reading through `onRead` into relay buffers:
 * made on a bare TCP handle (net/handle-socket.ts) when the upstream is named by
 * address, else (a host name to resolve, or no handles on this Node) a net.Socket.
 * Either emits 'connect', or 'error' then 'close'.
 */
export function connectUpstream(upstream: Upstream, onRead: (this: RelaySocket, nread: number, buffer: Buffer) => boolean): RelaySocket {
  const family = net.isIP(upstream.host);
  if (family !== 0 && handleConnectsAvailable && handlesInUse()) {
    return HandleSocket.connect(upstream.host, upstream.port, family === 4 ? 4 : 6, onRead, nextReadBuffer);
  }
  return net.connect({
    host: upstream.host,
    port: upstream.port,
    noDelay: true,
    allowHalfOpen: true,
    ...relaySocketOptions(onRead),
  });
}
