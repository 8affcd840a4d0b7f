import { describe, expect, it } from 'vitest';
import { parseUpstreams } from '../../../src/config/parse-upstreams.js';
import { escape, message } from './helpers.js';

describe('upstreams', () => {
  it('parses names, weights, defaults and spaces', () => {
    expect(parseUpstreams('U', ' db1=10.0.0.1:5432*2 , 10.0.0.2:5432,v6=[::1]:5432*256, [fd00::2]:1')).toEqual([
      { name: 'db1', host: '10.0.0.1', port: 5432, weight: 2 },
      { name: '10.0.0.2:5432', host: '10.0.0.2', port: 5432, weight: 1 },
      { name: 'v6', host: '::1', port: 5432, weight: 256 },
      { name: '[fd00::2]:1', host: 'fd00::2', port: 1, weight: 1 },
    ]);
  });

  it.each([
    ['db1', 'U: "db1" is not [name=]host:port[*weight]'],
    ['a:1,db1', 'U: "db1" is not [name=]host:port[*weight]'],
    ['db1=', 'U: "db1=" is not [name=]host:port[*weight]'],
    ['a=h:70000', 'U: "a=h:70000" is not [name=]host:port[*weight] with a port from 1 to 65535'],
    ['a=h:1*0', 'U: "a=h:1*0" is not [name=]host:port[*weight] with a weight from 1 to 256'],
    ['a=h:1*257', 'U: "a=h:1*257" is not [name=]host:port[*weight] with a weight from 1 to 256'],
    ['a=h:1*x', 'U: "a=h:1*x" is not [name=]host:port[*weight] with a weight from 1 to 256'],
    ['a b=h:1', 'U: "a b=h:1" is not [name=]host:port[*weight] with a name of 1-128 characters'],
    [`${'n'.repeat(129)}=h:1`, 'U: "nnnn'],
    ['=h:1', 'U: "=h:1" is not [name=]host:port[*weight] with a name of'],
    ['a=::1:5432', 'U: "a=::1:5432" is not [name=]host:port[*weight] with an IPv6 host in brackets'],
    ['a=:5432', 'U: "a=:5432" is not [name=]host:port[*weight] with a host before the port'],
    ['a=h:1,a=h:2', 'U: "a" is not a unique upstream name'],
    ['h:1,h:1', 'U: "h:1" is not a unique upstream name'],
    [' , ', 'U: " , " is not a comma list of [name=]host:port[*weight]'],
  ])('%s is refused', (text, start) => {
    expect(message(() => parseUpstreams('U', text))).toMatch(new RegExp(`^${escape(start)}`));
  });
});
