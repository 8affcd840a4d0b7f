import { describe, expect, it } from 'vitest';
import { listenSocketFor, nodeHasReusePort } from '../../../src/net/reuse-port.js';

describe('reusePort for workers', () => {
  it('knows the Node versions that have it: 22.12 on, 23.1 on, 24 and later', () => {
    expect(['20.20.2', '22.11.0', '23.0.0', '21.9.0', '18.20.4'].map((v) => nodeHasReusePort(v))).toEqual([false, false, false, false, false]);
    expect(['22.12.0', '22.23.5', '23.1.0', '24.0.0', '25.2.1'].map((v) => nodeHasReusePort(v))).toEqual([true, true, true, true, true]);
  });

  it('a socket per worker only in a worker, on a fixed port, on Linux, where Node has it', () => {
    expect(listenSocketFor(false, 8080, '22.12.0', 'linux')).toBe('own');
    expect(listenSocketFor(true, 8080, '22.12.0', 'linux')).toBe('reuseport');
    expect(listenSocketFor(true, 0, '22.12.0', 'linux')).toBe('shared');
    expect(listenSocketFor(true, 8080, '20.20.2', 'linux')).toBe('shared');
    expect(listenSocketFor(true, 8080, '22.12.0', 'darwin')).toBe('shared');
  });
});
