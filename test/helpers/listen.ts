import type net from 'node:net';

/**
 * Listen on a free port of `host` (IPv4 loopback unless told); resolves with the
 * port once listening, rejects if binding fails. Any net, http, https or tls server.
 */
export function listenLoopback(server: net.Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
