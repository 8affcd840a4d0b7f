import type { IncomingMessage } from 'node:http';

/** HTTP/1.0 and 1.1 are what tether forwards (llhttp also reads 0.9 and 2.0 lines). */
export function forwardableVersion(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 1 && (req.httpVersionMinor === 0 || req.httpVersionMinor === 1);
}

/** Whether the request head announces a body. */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Whether the client asked to keep the connection (RFC 9112 9.3). */
export function keepAliveAsked(req: IncomingMessage): boolean {
  let close = false;
  let keepAlive = false;
  for (const token of (req.headers.connection ?? '').toLowerCase().split(',')) {
    const t = token.trim();
    if (t === 'close') close = true;
    else if (t === 'keep-alive') keepAlive = true;
  }
  if (close) return false;
  return req.httpVersionMinor >= 1 || keepAlive;
}
