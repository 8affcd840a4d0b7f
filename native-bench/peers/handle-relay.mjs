#!/usr/bin/env node
/**
 * The floor under any Node relay, for syscalls.mjs: each accepted connection relayed
 * to one upstream on the bare TCP handles (`process.binding('tcp_wrap')`, as tether's
 * net/handle-socket.ts), every read into one shared buffer and copied out before its
 * write (as relay.ts does for small reads); no routing, no bookkeeping, no error
 * handling beyond closing both sides.
 *
 *   node handle-relay.mjs LISTEN_PORT UPSTREAM_PORT      (127.0.0.1; 'ready' over IPC)
 */
const [port, upstreamPort] = process.argv.slice(2).map(Number);
const { TCP, TCPConnectWrap, constants } = process.binding('tcp_wrap');
const { WriteWrap, streamBaseState, kReadBytesOrError, kLastWriteWasAsync } = process.binding('stream_wrap');

const shared = Buffer.allocUnsafeSlow(64 * 1024);
let spare = null;

function onWriteDone() {
  this.buffer = null;
}

function onRead() {
  const n = streamBaseState[kReadBytesOrError];
  if (n <= 0) {
    if (n < 0) {
      this.close();
      this.peer.close();
    }
    return undefined;
  }
  const data = Buffer.allocUnsafe(n);
  shared.copy(data, 0, 0, n);
  const req = spare ?? new WriteWrap();
  spare = null;
  req.handle = this.peer;
  req.oncomplete = onWriteDone;
  if (this.peer.writeBuffer(req, data) === 0 && streamBaseState[kLastWriteWasAsync] === 0) spare = req;
  else req.buffer = data;
  return shared;
}

const server = new TCP(constants.SERVER);
server.bind('127.0.0.1', port);
server.onconnection = (status, client) => {
  if (status !== 0) return;
  client.setNoDelay(true);
  const upstream = new TCP(constants.SOCKET);
  const req = new TCPConnectWrap();
  req.oncomplete = (connected) => {
    if (connected !== 0) return void client.close();
    upstream.setNoDelay(true);
    client.peer = upstream;
    upstream.peer = client;
    for (const handle of [client, upstream]) {
      handle.onread = onRead;
      handle.useUserBuffer(shared);
      handle.readStart();
    }
  };
  upstream.connect(req, '127.0.0.1', upstreamPort);
};
server.listen(511);
process.send?.('ready');
