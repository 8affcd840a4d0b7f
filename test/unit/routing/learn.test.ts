import { describe, expect, it } from 'vitest';
import { learnedKeys } from '../../../src/routing/learn.js';
import { parseLearnRules } from '../../../src/config/parse-keys.js';
import type { HeadFields } from '../../../src/routing/types.js';

const rules = (text: string) => parseLearnRules('TETHER_LEARN', text);

/** A response head's fields from node:http-style rawHeaders. */
function fields(raw: readonly string[]): HeadFields {
  return {
    values: (name) => raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === name),
  };
}

describe('learnedKeys', () => {
  it('takes the capture group of a header rule, any header case', () => {
    const raw = ['Location', 'http://127.0.0.1:7000/files/24e533e0?x=1', 'Tus-Resumable', '1.0.0'];
    expect(learnedKeys(rules('header:location=/files/([^/?]+)'), fields(raw))).toEqual(['24e533e0']);
  });
  it('reads every Set-Cookie line, attributes ignored', () => {
    const raw = ['Set-Cookie', 'other=1; Path=/', 'set-cookie', 'io=Zx9-; Path=/; HttpOnly; SameSite=Lax'];
    expect(learnedKeys(rules('set-cookie:io'), fields(raw))).toEqual(['Zx9-']);
  });
  it('learns nothing from a deleted cookie or a header that does not match', () => {
    const raw = ['Set-Cookie', 'io=; Max-Age=0', 'Location', '/elsewhere'];
    expect(learnedKeys(rules('set-cookie:io,header:location=/files/(\\w+)'), fields(raw))).toEqual([]);
  });
  it('keeps rule order and drops duplicates', () => {
    const raw = ['X-Upload', 'u1', 'Set-Cookie', 'sid=s1', 'X-Upload', 'u1'];
    expect(learnedKeys(rules('set-cookie:sid,header:x-upload=(\\w+)'), fields(raw))).toEqual(['s1', 'u1']);
  });
});
