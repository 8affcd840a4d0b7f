import { afterAll, beforeAll } from 'vitest';
import { useHandles } from '../../../src/net/tcp-binding.js';

/**
 * ../http-relay-edges.test.ts again with connections on net.Socket, the path
 * taken where this Node exposes no TCP handles (src/net/handle-socket.ts).
 */
beforeAll(() => useHandles(false));
afterAll(() => useHandles(true));

await import('../http-relay-edges.test.js');
