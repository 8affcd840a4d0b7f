import { copyRead } from '../relay.js';
import { onClientRead } from '../session-events.js';
import { connectionOf } from './connection.js';
import { proxyHeaderData } from './inbound-proxy.js';
import type { ClientSocket } from './types.js';

/**
 * The read callback of every http-mode client socket (given by the Acceptor): each
 * read is copied out of the shared read buffer into a buffer of its own, which the
 * connection may keep (pipelined requests, a head spanning reads), and handed to
 * the phase the connection is in. Once an upgrade has made the socket a tunnel, its
 * reads go to the Session as tcp mode's do, without a copy.
 */
export function onHttpClientRead(this: ClientSocket, nread: number, buffer: Buffer): boolean {
  const connection = connectionOf(this);
  if (connection === undefined) return onClientRead.call(this, nread, buffer);
  const chunk = copyRead(nread, buffer);
  if (connection.serving) connection.onClientData(chunk);
  else proxyHeaderData(this, chunk);
  return true;
}
