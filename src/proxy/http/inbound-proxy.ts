import type net from 'node:net';
import type { ListenerConfig } from '../../config/types.js';
import { sourceIpKey } from '../../net/address.js';
import { ProxyPrelude } from '../proxy-protocol/prelude.js';
import type { Outcome } from '../types.js';
import { clientOf, type ClientInfo, type ClientSocket } from './client.js';

/** What reading a client's PROXY header needs from its listener. */
export interface ProxyHeaderHost {
  reject(info: ClientInfo, outcome: Outcome, reason: string): void;
  /** Hand the connection to node:http. */
  serve(socket: net.Socket): void;
}

/**
 * Read a trusted client's inbound PROXY header (TETHER_ACCEPT_PROXY) before node:http
 * sees the connection: its addresses become the client's (the `source-ip` key, the
 * outgoing PROXY header), and the bytes after it are the first request's.
 */
export function readProxyHeader(socket: net.Socket, info: ClientInfo, config: ListenerConfig): void {
  if (config.acceptProxy === 'off') return;
  info.prelude = new ProxyPrelude(config.acceptProxy, config.headTimeoutMs, onProxyHeaderTimeout, socket as ClientSocket);
  socket.on('data', onProxyHeaderData);
  socket.on('end', onProxyHeaderEnd);
  socket.resume();
}

export function proxyHeaderChunk(host: ProxyHeaderHost, socket: ClientSocket, chunk: Buffer): void {
  const info = clientOf(socket)!;
  const end = info.prelude?.push(chunk) ?? null;
  if (end === null) return;
  endProxyHeader(socket, info);
  if (end.kind === 'failed') {
    host.reject(info, end.outcome!, end.reason);
    socket.destroy();
    return;
  }
  const header = end.header;
  if (header.command === 'proxy') {
    info.address = sourceIpKey(header.sourceAddress);
    info.port = header.sourcePort;
    info.destAddress = header.destAddress;
    info.destPort = header.destPort;
  }
  if (end.rest.length > 0) socket.unshift(end.rest);
  host.serve(socket);
}

/** The client's FIN, or the deadline, came before a whole header. */
export function proxyHeaderIncomplete(host: ProxyHeaderHost, socket: ClientSocket, timedOut: boolean): void {
  const info = clientOf(socket)!;
  if (info.prelude === null) return;
  const end = info.prelude.incomplete(timedOut);
  endProxyHeader(socket, info);
  if (end.kind === 'failed' && end.outcome !== null) host.reject(info, end.outcome, end.reason);
  socket.destroy();
}

function endProxyHeader(socket: net.Socket, info: ClientInfo): void {
  socket.pause();
  socket.removeListener('data', onProxyHeaderData);
  socket.removeListener('end', onProxyHeaderEnd);
  info.prelude = null;
}

function onProxyHeaderData(this: net.Socket, chunk: Buffer): void {
  clientOf(this)!.owner.onProxyHeaderChunk(this, chunk);
}

function onProxyHeaderEnd(this: net.Socket): void {
  clientOf(this)!.owner.onProxyHeaderIncomplete(this, false);
}

function onProxyHeaderTimeout(socket: ClientSocket): void {
  clientOf(socket)!.owner.onProxyHeaderIncomplete(socket, true);
}
