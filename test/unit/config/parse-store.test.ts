import { describe, expect, it } from 'vitest';
import { parseStore, redactRedisUrl } from '../../../src/config/parse-store.js';
import { escape, message } from './helpers.js';

const STANDALONE = { kind: 'standalone' };

describe('store', () => {
  it.each([
    ['memory', { kind: 'memory' }],
    ['redis://127.0.0.1:6379', { kind: 'redis', url: 'redis://127.0.0.1:6379', redacted: 'redis://127.0.0.1:6379', topology: STANDALONE }],
    ['redis://:s3cret@redis:6379/2', { kind: 'redis', url: 'redis://:s3cret@redis:6379/2', redacted: 'redis://:***@redis:6379/2', topology: STANDALONE }],
    ['rediss://user:pw@[::1]:6380', { kind: 'redis', url: 'rediss://user:pw@[::1]:6380', redacted: 'rediss://user:***@[::1]:6380', topology: STANDALONE }],
    ['redis://localhost', { kind: 'redis', url: 'redis://localhost', redacted: 'redis://localhost', topology: STANDALONE }],
  ])('%s', (text, store) => {
    expect(parseStore('S', text)).toEqual(store);
  });

  it.each([
    ['redis', 'S: "redis" is not memory or redis://[:password@]host:port[/db]'],
    ['http://h:1', 'S: "http://h:1" is not memory'],
    ['redis://:pw@h:1/x', 'S: "redis://:***@h:1/x" is not memory'],
    ['redis://:pw@h:99999', 'S: "redis://:***@h:99999" is not memory'],
    ['redis://:pw@h:1?db=2', 'S: "redis://:***@h:1?db=2" is not memory'],
    ['redis://', 'S: "redis://" is not memory'],
  ])('%s is refused without showing a password', (text, start) => {
    const text2 = message(() => parseStore('S', text));
    expect(text2).toMatch(new RegExp(`^${escape(start)}`));
    expect(text2).not.toContain('pw');
  });

  it('redacts every form of user-info', () => {
    expect(redactRedisUrl('redis://secret@h:1')).toBe('redis://***@h:1');
    expect(redactRedisUrl('redis://:p@ss@h:1/0')).toBe('redis://:***@h:1/0');
    expect(redactRedisUrl('redis://h:1')).toBe('redis://h:1');
  });
});
