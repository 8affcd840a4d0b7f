import { afterAll, beforeAll } from 'vitest';
import { useHandles } from '../../../src/net/tcp-binding.js';

/**
 * ../http-proxy-protocol.test.ts again with connections on net.Socket, the path
 * taken where this Node exposes no TCP handles (src/net/handle-socket.ts).
 */
beforeAll(() => useHandles(false));
afterAll(() => useHandles(true));

await import('../http-proxy-protocol.test.js');
