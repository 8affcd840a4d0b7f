import { afterAll, beforeAll } from 'vitest';
import { serveAcceptedHandles } from '../../../src/proxy/acceptor.js';

/**
 * ../http-ws.test.ts again with http mode's client connections on net.Socket, the path
 * taken where this Node exposes no TCP handles (src/net/handle-socket.ts).
 */
beforeAll(() => serveAcceptedHandles(false));
afterAll(() => serveAcceptedHandles(true));

await import('../http-ws.test.js');
