import { describe, expect, it } from 'vitest';
import { parseKeyChain, parseLearnRules, splitKeyChain, splitLearnRules } from '../../../src/config/parse-keys.js';
import { escape, message } from './helpers.js';

describe('key chain', () => {
  it('parses every source; header names lower-cased', () => {
    const chain = parseKeyChain('K', 'header:X-Session-Id, cookie:SID,query:upload_id,path:^/u/([^/]+),source-ip');
    expect(chain.map((k) => k.kind)).toEqual(['header', 'cookie', 'query', 'path', 'source-ip']);
    expect(chain[0]).toEqual({ kind: 'header', name: 'x-session-id' });
    expect(chain[1]).toEqual({ kind: 'cookie', name: 'SID' });
    expect(chain[2]).toEqual({ kind: 'query', name: 'upload_id' });
    const path = chain[3]!;
    expect(path.kind === 'path' && path.source).toBe('^/u/([^/]+)');
    expect(path.kind === 'path' && path.pattern.exec('/u/abc/x')?.[1]).toBe('abc');
  });

  it('keeps commas inside a path regex', () => {
    expect(splitKeyChain('path:^/a{1,3}/(\\d+),source-ip')).toEqual(['path:^/a{1,3}/(\\d+)', 'source-ip']);
    expect(splitKeyChain('path:^/(x|y),z/(.+), header:a')).toEqual(['path:^/(x|y),z/(.+)', 'header:a']);
    const [path] = parseKeyChain('K', 'path:^/a{1,3}/(\\d+)');
    expect(path!.kind === 'path' && path!.pattern.exec('/aa/42')?.[1]).toBe('42');
    // Outside a regex, a stray piece is its own (bad) item.
    expect(message(() => parseKeyChain('K', 'source-ip,heder:x'))).toMatch(/^K: "heder:x" is not one of source-ip, header:NAME/);
  });

  it.each([
    ['nope', 'K: "nope" is not one of source-ip, header:NAME, cookie:NAME, query:NAME, path:REGEX'],
    ['header:', 'K: "header:" is not header:NAME with NAME an HTTP header name'],
    ['header:a b', 'K: "header:a b" is not header:NAME'],
    ['cookie:a;b', 'K: "cookie:a;b" is not cookie:NAME'],
    ['query:a=b', 'K: "query:a=b" is not query:NAME'],
    ['path:^/u/[^/]+', 'K: "path:^/u/[^/]+" is not path:REGEX with a valid regular expression that has a capture group'],
    ['path:(unclosed', 'K: "path:(unclosed" is not path:REGEX'],
    ['path:(?:x)', 'K: "path:(?:x)" is not path:REGEX'],
    [',', 'K: "," is not a comma list of source-ip'],
  ])('%s is refused', (text, start) => {
    expect(message(() => parseKeyChain('K', text))).toMatch(new RegExp(`^${escape(start)}`));
  });
});

describe('learn rules', () => {
  it('parses header and set-cookie rules, with commas in regexes', () => {
    const rules = parseLearnRules('L', 'header:Location=/files/([^/,]+), set-cookie:sid,header:x-a=^(.{1,8})');
    expect(rules.map((r) => (r.kind === 'header' ? [r.kind, r.name, r.source] : [r.kind, r.name]))).toEqual([
      ['header', 'location', '/files/([^/,]+)'],
      ['set-cookie', 'sid'],
      ['header', 'x-a', '^(.{1,8})'],
    ]);
    expect(splitLearnRules('set-cookie:a,set-cookie:b')).toEqual(['set-cookie:a', 'set-cookie:b']);
    expect(parseLearnRules('L', 'none')).toEqual([]);
  });

  it.each([
    ['cookie:sid', 'L: "cookie:sid" is not one of header:NAME=REGEX, set-cookie:NAME'],
    ['header:location', 'L: "header:location" is not header:NAME=REGEX'],
    ['header:location=/files/.+', 'L: "header:location=/files/.+" is not header:NAME=REGEX'],
    ['set-cookie:', 'L: "set-cookie:" is not set-cookie:NAME'],
  ])('%s is refused', (text, start) => {
    expect(message(() => parseLearnRules('L', text))).toMatch(new RegExp(`^${escape(start)}`));
  });
});
