import net from 'node:net';
import { HandleSocket } from '../net/handle-socket.js';
import { handleConnectsAvailable, handlesInUse } from '../net/tcp-binding.js';
import type { Upstream } from '../routing/upstream.js';
import { nextReadBuffer, readOptions, relaySocketOptions } from './relay.js';

type UpstreamRead = (this: HandleSocket | net.Socket, nread: number, buffer: Buffer) => boolean;

/**
 * A connection to an upstream, reading through `onRead` into relay buffers: made on a
 * bare TCP handle (net/handle-socket.ts) when the upstream is named by address, else
 * (a host name to resolve, or no handles on this Node) a net.Socket. Either emits
 * 'connect', or 'error' then 'close'.
 *
 * `relay`: a tcp-mode session's (half-open, `write()` false exactly while bytes are
 * queued); `kept-alive`: one of http mode's shared connections (the upstream's FIN
 * closes it).
 */
export function connectUpstream(upstream: Upstream, onRead: UpstreamRead, use: 'relay' | 'kept-alive'): HandleSocket | net.Socket {
  const relay = use === 'relay';
  const family = net.isIP(upstream.host);
  if (family !== 0 && handleConnectsAvailable && handlesInUse()) {
    return HandleSocket.connect(upstream.host, upstream.port, family === 4 ? 4 : 6, onRead, nextReadBuffer, relay);
  }
  const options = { host: upstream.host, port: upstream.port, noDelay: true };
  return relay ? net.connect({ ...options, allowHalfOpen: true, ...relaySocketOptions(onRead) }) : net.connect({ ...options, ...readOptions(onRead) });
}
