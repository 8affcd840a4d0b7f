import net from 'node:net';
import { connectHandle, type HandleSocket } from '../net/handle-socket.js';
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
  const handle = connectHandle(upstream.host, upstream.port, onRead, nextReadBuffer, relay);
  if (handle !== null) return handle;
  const options = { host: upstream.host, port: upstream.port, noDelay: true };
  return relay ? net.connect({ ...options, allowHalfOpen: true, ...relaySocketOptions(onRead) }) : net.connect({ ...options, ...readOptions(onRead) });
}
