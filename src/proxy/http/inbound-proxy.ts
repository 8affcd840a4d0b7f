import type { ListenerConfig } from '../../config/types.js';
import { sourceIpKey } from '../../net/address.js';
import { ProxyPrelude } from '../proxy-protocol/prelude.js';
import type { Outcome } from '../types.js';
import type { HttpConnection } from './connection.js';
import type { ClientSocket } from './types.js';

/** What reading a client's PROXY header needs from its listener. */
export interface ProxyHeaderHost {
  reject(connection: HttpConnection, outcome: Outcome, reason: string): void;
}

const kPrelude = Symbol('tether.prelude');
type PreludeSocket = ClientSocket & { [kPrelude]?: Reading };

interface Reading {
  readonly host: ProxyHeaderHost;
  readonly connection: HttpConnection;
  readonly prelude: ProxyPrelude<ClientSocket>;
}

/**
 * Read a trusted client's inbound PROXY header (TETHER_ACCEPT_PROXY) before its first
 * request: its addresses become the client's (the `source-ip` key, the outgoing
 * PROXY header), and the bytes after it are the first request's.
 */
export function readProxyHeader(host: ProxyHeaderHost, connection: HttpConnection, config: ListenerConfig): void {
  if (config.acceptProxy === 'off') return;
  const socket = connection.socket as PreludeSocket;
  socket[kPrelude] = { host, connection, prelude: new ProxyPrelude(config.acceptProxy, config.headTimeoutMs, onProxyHeaderTimeout, socket) };
  socket.on('end', onProxyHeaderEnd);
  socket.on('close', onProxyHeaderClose);
  socket.resume();
}

/** Bytes read before the connection serves requests (client-reads.ts). */
export function proxyHeaderData(socket: ClientSocket, chunk: Buffer): void {
  const reading = (socket as PreludeSocket)[kPrelude];
  if (reading === undefined) return;
  const end = reading.prelude.push(chunk);
  if (end === null) return;
  endProxyHeader(socket);
  const connection = reading.connection;
  if (end.kind === 'failed') {
    reading.host.reject(connection, end.outcome!, end.reason);
    socket.destroy();
    return;
  }
  const header = end.header;
  if (header.command === 'proxy') {
    connection.address = sourceIpKey(header.sourceAddress);
    connection.port = header.sourcePort;
    connection.setDest(header.destAddress, header.destPort);
  }
  connection.serve();
  if (end.rest.length > 0) connection.onClientData(end.rest);
}

/** The client's FIN, or the deadline, came before a whole header. */
function incomplete(socket: PreludeSocket, timedOut: boolean): void {
  const reading = socket[kPrelude];
  if (reading === undefined) return;
  const end = reading.prelude.incomplete(timedOut);
  endProxyHeader(socket);
  if (end.kind === 'failed' && end.outcome !== null) reading.host.reject(reading.connection, end.outcome, end.reason);
  socket.destroy();
}

function endProxyHeader(socket: PreludeSocket): void {
  socket[kPrelude]?.prelude.stop();
  socket[kPrelude] = undefined;
  socket.removeListener('end', onProxyHeaderEnd);
  socket.removeListener('close', onProxyHeaderClose);
}

function onProxyHeaderEnd(this: PreludeSocket): void {
  incomplete(this, false);
}

function onProxyHeaderTimeout(socket: ClientSocket): void {
  incomplete(socket as PreludeSocket, true);
}

function onProxyHeaderClose(this: PreludeSocket): void {
  endProxyHeader(this);
}
