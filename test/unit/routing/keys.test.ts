import { describe, expect, it } from 'vitest';
import { cookieValue, queryValue, requestKey, type RequestHead } from '../../../src/routing/keys.js';
import { parseKeyChain } from '../../../src/config/parse-keys.js';

function head(target: string, headers: Record<string, string[]> = {}): RequestHead {
  return { target, values: (name) => headers[name] ?? [] };
}

const chain = (text: string) => parseKeyChain('TETHER_KEY', text);

describe('requestKey', () => {
  const cases: [string, string, RequestHead, { key: string; source: string } | null][] = [
    ['header', 'header:X-Session', head('/', { 'x-session': ['s1', 's2'] }), { key: 's1', source: 'header' }],
    ['header absent', 'header:X-Session', head('/'), null],
    ['empty header is absent', 'header:X-Session,query:k', head('/?k=q', { 'x-session': [''] }), { key: 'q', source: 'query' }],
    ['cookie', 'cookie:sid', head('/', { cookie: ['a=1; sid=abc; b=2'] }), { key: 'abc', source: 'cookie' }],
    ['quoted cookie', 'cookie:sid', head('/', { cookie: ['sid="q v"'] }), { key: 'q v', source: 'cookie' }],
    ['cookie name is exact', 'cookie:sid', head('/', { cookie: ['xsid=1; sidx=2'] }), null],
    ['query', 'query:sid', head('/socket.io/?EIO=4&transport=polling&sid=Ab-_9', {}), { key: 'Ab-_9', source: 'query' }],
    ['query decoded', 'query:k', head('/?k=a%20b+c', {}), { key: 'a b c', source: 'query' }],
    ['bad escape kept raw', 'query:k', head('/?k=%zz', {}), { key: '%zz', source: 'query' }],
    ['empty query value is absent', 'query:k,source-ip', head('/?k=&x=1'), { key: '127.0.0.9', source: 'source-ip' }],
    ['query name only', 'query:k,cookie:c', head('/?k', { cookie: ['c=1'] }), { key: '1', source: 'cookie' }],
    ['fragment ignored', 'query:k', head('/?a=1#k=2'), null],
    ['path group', 'path:^/files/([^/?]+)', head('/files/abc123?x=1'), { key: 'abc123', source: 'path' }],
    ['path miss', 'path:^/files/([^/?]+)', head('/files'), null],
    ['first in chain wins', 'query:sid,cookie:io', head('/?sid=Q', { cookie: ['io=C'] }), { key: 'Q', source: 'query' }],
    ['falls through chain', 'query:sid,cookie:io', head('/', { cookie: ['io=C'] }), { key: 'C', source: 'cookie' }],
    ['source-ip', 'header:x,source-ip', head('/'), { key: '127.0.0.9', source: 'source-ip' }],
  ];
  for (const [name, text, h, expected] of cases) {
    it(name, () => {
      expect(requestKey(chain(text), h, '127.0.0.9')).toEqual(expected);
    });
  }
});

describe('cookieValue and queryValue', () => {
  it('take the first occurrence', () => {
    expect(cookieValue(['a=1; a=2', 'a=3'], 'a')).toBe('1');
    expect(queryValue('/?a=1&a=2', 'a')).toBe('1');
  });
  it('survive hostile text', () => {
    for (const text of ['', ';', '=;=', ';;a', '=a', 'a', '"', 'a="']) {
      expect(() => cookieValue([text], 'a')).not.toThrow();
      expect(() => queryValue(`/?${text}`, 'a')).not.toThrow();
    }
    expect(cookieValue(['a='], 'a')).toBe('');
  });
});
