// Nanoseconds per call of each first-bytes reader on a typical whole message:
// node's own ClientHello (captured from tls.connect), an MQTT 3.1.1 CONNECT with a
// username and password, an mstsc-style X.224 CR, and a prefix regex over an HTTP
// request line. Run after `npm run build`: node native-bench/inspect-parse.mjs
import net from 'node:net';
import tls from 'node:tls';
import { compilePrefix, readMqttClientId, readMqttUsername, readRdpCookie, readSni } from '../dist/proxy/tcp/inspect/index.js';

const ROUNDS = Number(process.env.ROUNDS ?? 500_000);

async function captureHello() {
  const chunks = [];
  const server = net.createServer((s) => {
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => {});
    setTimeout(() => s.destroy(), 100);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  await new Promise((r) => {
    const c = tls.connect({ host: '127.0.0.1', port: server.address().port, servername: 'api.example.com', ALPNProtocols: ['h2', 'http/1.1'] });
    c.on('error', r);
    c.on('close', r);
  });
  server.close();
  return Buffer.concat(chunks);
}

function mqttConnect() {
  const str = (s) => {
    const b = Buffer.from(s);
    return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  };
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 60]), str('sensor-4711-eu-west'), str('device-user'), str('secret-password-token')]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

function rdpRequest() {
  const variable = Buffer.concat([Buffer.from('Cookie: mstshash=alice\r\n'), Buffer.from([1, 0, 8, 0, 3, 0, 0, 0])]);
  const length = 11 + variable.length;
  return Buffer.concat([Buffer.from([3, 0, 0, length, length - 5, 0xe0, 0, 0, 0, 0, 0]), variable]);
}

let sink = 0;
function bench(name, buf, read) {
  const once = () => {
    const r = read(buf, buf.length);
    sink += r.kind === 'key' ? r.key.length : 1;
  };
  for (let i = 0; i < 50_000; i++) once(); // warm up
  let best = Infinity;
  for (let trial = 0; trial < 5; trial++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ROUNDS; i++) once();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / ROUNDS);
  }
  console.log(`${name.padEnd(40)} ${String(buf.length).padStart(5)} B ${best.toFixed(0).padStart(6)} ns/call`);
}

const hello = await captureHello();
bench('readSni (node ClientHello)', hello, readSni);
bench('readMqttClientId (3.1.1 CONNECT)', mqttConnect(), readMqttClientId);
bench('readMqttUsername (3.1.1 CONNECT)', mqttConnect(), readMqttUsername);
bench('readRdpCookie (X.224 CR + neg req)', rdpRequest(), readRdpCookie);
bench('prefix ^GET /u/([^/ ]+)/ (request line)', Buffer.from('GET /u/alice/inbox?limit=50 HTTP/1.1\r\nHost: mail.example.com\r\n\r\n'), compilePrefix('^GET /u/([^/ ]+)/'));
if (sink === 42) console.log('');
