// Nanoseconds to parse a typical browser GET head (~10 fields): tether's RequestHead
// (dist/proxy/http/h1) against llhttp through node's HTTPParser, set up as node:http
// sets it up (strict flags, the callbacks node:http installs build the header array
// and strings). Run after `npm run build`: node native-bench/h1-parse.mjs
import { HTTPParser } from 'node:_http_common';
import { RequestHead } from '../dist/proxy/http/h1/index.js';

const HEAD = Buffer.from(
  'GET /assets/app.js?v=1234 HTTP/1.1\r\nHost: www.example.com\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n' +
    'Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n' +
    'Referer: https://www.example.com/\r\nConnection: keep-alive\r\nCookie: sid=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n' +
    'Sec-Fetch-Dest: script\r\nSec-Fetch-Mode: no-cors\r\n\r\n',
  'latin1',
);
const ROUNDS = Number(process.env.ROUNDS ?? 200_000);

function bench(name, once) {
  for (let i = 0; i < 20_000; i++) once(); // warm up
  let best = Infinity;
  for (let trial = 0; trial < 5; trial++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ROUNDS; i++) once();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / ROUNDS);
  }
  console.log(`${name.padEnd(34)} ${best.toFixed(0).padStart(6)} ns/head`);
}

const tether = new RequestHead(16384);
let sink = 0;
bench('tether RequestHead (no strings)', () => {
  tether.reset();
  sink += tether.push(HEAD);
});
bench('tether RequestHead + host, target', () => {
  tether.reset();
  tether.push(HEAD);
  sink += tether.header('host').length + tether.target.length;
});

const parser = new HTTPParser();
parser.initialize(HTTPParser.REQUEST, {}, 16384, HTTPParser.kLenientNone);
parser[HTTPParser.kOnHeadersComplete] = (_maj, _min, headers, _method, url) => {
  sink += headers.length + url.length;
  return 0;
};
parser[HTTPParser.kOnMessageComplete] = () => {};
bench('llhttp (node:_http_common)', () => {
  sink += parser.execute(HEAD);
});
if (sink === 42) console.log('');
