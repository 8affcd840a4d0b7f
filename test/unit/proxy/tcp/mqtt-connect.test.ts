import * as mqtt from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { DEFAULT_INSPECT_BYTES, readMqttClientId, readMqttUsername, type InspectResult } from '../../../../src/proxy/tcp/inspect/index.js';
import { fuzzSeed, runFuzz, type CorpusEntry } from '../../../helpers/fuzz.js';
import { answer, checkChunking, everyEnd, someEnds } from '../../../helpers/inspect.js';
import { seededRandom } from '../../../helpers/random.js';

type Connect = mqtt.IConnectPacket;

const ALPHABET = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_/:.+ ', 'é', 'ß', '中', '文', '😀', '🦀'];

function randomString(random: () => number, max: number, min = 0): string {
  const n = min + Math.floor(random() * (max - min + 1));
  return Array.from({ length: n }, () => ALPHABET[Math.floor(random() * ALPHABET.length)]).join('');
}

/** A random CONNECT for protocol level 3, 4 or 5, every optional part sometimes there. */
function randomConnect(random: () => number, version: 3 | 4 | 5): Connect {
  const packet: Connect = {
    cmd: 'connect',
    protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: version,
    clean: random() < 0.5,
    keepalive: Math.floor(random() * 65536),
    clientId: randomString(random, 40, version === 3 ? 1 : 0),
  };
  if (random() < 0.7) packet.username = randomString(random, 30);
  if (packet.clientId === '') packet.clean = true; // the generator's rule
  if (random() < 0.5 && packet.username !== undefined) packet.password = Buffer.from(randomString(random, 60));
  if (random() < 0.5) {
    packet.will = { topic: randomString(random, 30, 1), payload: Buffer.from(randomString(random, 80)), qos: Math.floor(random() * 3) as 0 | 1 | 2, retain: random() < 0.5 };
    if (version === 5 && random() < 0.7) {
      packet.will.properties = { willDelayInterval: 30, contentType: 'text/plain', responseTopic: 'r/1', correlationData: Buffer.from('c0ffee'), userProperties: { a: 'b', ü: ['x', 'y'] } };
    }
  }
  if (version === 5 && random() < 0.7) {
    packet.properties = { sessionExpiryInterval: 3600, receiveMaximum: 10, maximumPacketSize: 65536, topicAliasMaximum: 5, requestProblemInformation: true, userProperties: { region: 'eu' } };
    if (random() < 0.3) {
      packet.properties.authenticationMethod = 'SCRAM-SHA-1';
      packet.properties.authenticationData = Buffer.from('client-first');
    }
  }
  return packet;
}

/** The expected key for a reader: the field when non-empty. */
function expected(value: string | undefined): string {
  return value === undefined || value === '' ? 'none' : answer({ kind: 'key', key: value });
}

/**
 * mqtt-packet's parser on the first packet of `input` (fed nothing past it, so the
 * reference cannot read into later bytes): the CONNECT if it accepts one, else null.
 */
function referenceConnect(input: Buffer): Connect | null {
  const length = completePacketLength(input);
  if (length === null) return null;
  let packet: Connect | null = null;
  let failed = false;
  const parser = mqtt.parser();
  parser.on('packet', (p) => {
    if (p.cmd === 'connect' && packet === null) packet = p;
  });
  parser.on('error', () => {
    failed = true;
  });
  try {
    parser.parse(input.subarray(0, length));
  } catch {
    return null;
  }
  return failed ? null : packet;
}

/** The length of the first packet if `input` holds all of it (a valid 1-4 byte remaining length), else null. */
function completePacketLength(input: Buffer): number | null {
  if (input.length < 2) return null;
  let length = 0;
  let at = 1;
  for (let multiplier = 1; ; multiplier *= 128) {
    if (at >= input.length || at > 4) return null;
    const b = input[at++]!;
    length += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) break;
  }
  return at + length > input.length ? null : at + length;
}

describe('MQTT CONNECT readers on packets mqtt-packet generates', () => {
  it('read client id and username for levels 3, 4 and 5, fed whole and split at every byte', () => {
    const random = seededRandom(0x3117);
    for (const version of [3, 4, 5] as const) {
      for (let i = 0; i < 300; i++) {
        const packet = randomConnect(random, version);
        const bytes = mqtt.generate(packet);
        const ends = i < 40 ? everyEnd(bytes) : someEnds(bytes.length, 20, random);
        const id = checkChunking(readMqttClientId, bytes, ends, DEFAULT_INSPECT_BYTES, i);
        const user = checkChunking(readMqttUsername, bytes, ends, DEFAULT_INSPECT_BYTES, i + 1);
        const label = `v${version} #${i}`;
        expect(id.kind === 'none' ? 'none' : answer(id), label).toBe(expected(packet.clientId));
        expect(user.kind === 'none' ? 'none' : answer(user), label).toBe(expected(packet.username));
        expect(answer(readMqttClientId(Buffer.concat([bytes, Buffer.from([0x30, 0x00])]), bytes.length + 2)), 'bytes after the packet are not read').toBe(answer(id));
      }
    }
  });

  it('accepts a bridge (level | 0x80) and refuses what the grammar refuses', () => {
    const base = mqtt.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'dev-1', username: 'u', clean: true, keepalive: 60 });
    const levelAt = 2 + 2 + 4;
    const flagsAt = levelAt + 1;
    const edit = (at: number, value: number): Buffer => {
      const copy = Buffer.from(base);
      copy[at] = value;
      return copy;
    };
    const reason = (r: InspectResult): string => (r.kind === 'none' ? r.reason : answer(r));
    expect(answer(readMqttClientId(edit(levelAt, 0x84), base.length))).toBe(answer({ kind: 'key', key: 'dev-1' }));
    expect(reason(readMqttClientId(edit(levelAt, 3), base.length))).toMatch(/protocol name and level/);
    expect(reason(readMqttClientId(edit(0, 0x12), base.length))).toMatch(/not CONNECT/);
    expect(reason(readMqttClientId(edit(flagsAt, base[flagsAt]! | 1), base.length))).toMatch(/connect flags/);
    expect(reason(readMqttClientId(edit(flagsAt, base[flagsAt]! | 0x18 | 0x04), base.length))).toMatch(/connect flags/); // will QoS 3
    expect(reason(readMqttClientId(edit(flagsAt, (base[flagsAt]! & 0x7f) | 0x40), base.length))).toMatch(/connect flags/); // password, no username (3.1.1)
    expect(reason(readMqttClientId(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]), 6))).toMatch(/over 4 bytes/);
    expect(readMqttClientId(Buffer.from([0x10, 0xff, 0xff, 0xff]), 4).kind).toBe('more');
    expect(reason(readMqttClientId(Buffer.from([0x10, 0xff, 0xff, 0x7f]), 4))).toMatch(/longer than the inspect limit/);
    const badUtf8 = Buffer.from(base);
    badUtf8.write('\xc0\xaf', base.indexOf('dev-1'), 'latin1'); // an overlong '/'
    expect(reason(readMqttClientId(badUtf8, base.length))).toMatch(/UTF-8/);
    const nul = Buffer.from(base);
    nul[base.indexOf('dev-1')] = 0;
    expect(reason(readMqttClientId(nul, base.length))).toMatch(/UTF-8/);
    const trailing = Buffer.concat([Buffer.from([0x10, base[1]! + 1]), base.subarray(2), Buffer.from([0])]);
    expect(reason(readMqttClientId(trailing, trailing.length))).toMatch(/after the last field/);
    expect(reason(readMqttUsername(mqtt.generate({ cmd: 'connect', protocolVersion: 4, clientId: 'x', clean: true, keepalive: 1 }), 100))).toMatch(/no username/);
    expect(readMqttClientId(Buffer.from('GET / HTTP/1.1'), 1).kind).toBe('none');
    const lying = Buffer.from(base);
    lying.writeUInt16BE(200, base.indexOf('dev-1') - 2); // client id length past the remaining length
    expect(reason(readMqttClientId(lying, base.length))).toMatch(/past the remaining length/);
  });
});

/** Why ours may refuse what mqtt-packet accepts: each a rule mqtt-packet does not check. */
const STRICTER = [
  'mqtt: protocol name and level are not MQTT 4/5 or MQIsdp 3',
  'mqtt: connect flags break the rules (reserved bit, will QoS/retain, password without username)',
  'mqtt: a string is not well-formed UTF-8 or holds U+0000',
  'mqtt: bytes after the last field of CONNECT',
  'mqtt: v5 properties are not allowed there or do not fill their length exactly',
  'mqtt: client identifier is empty',
  'mqtt: no username (flag not set, or empty)',
];

describe('MQTT CONNECT readers fuzzing, differential against mqtt-packet', () => {
  it('100,000 mutated CONNECTs: no throw, a key only where mqtt-packet reads the same value, stable under chunking, no read past end', () => {
    const random = seededRandom(0x5eed);
    const corpus: CorpusEntry[] = [];
    for (const version of [3, 4, 5] as const) {
      for (let i = 0; i < 12; i++) corpus.push({ name: `v${version}-${i}`, bytes: mqtt.generate(randomConnect(random, version)) });
    }
    const dictionary = [Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54]), Buffer.from('MQIsdp'), Buffer.from([0x10]), Buffer.from([0xff, 0xff, 0xff, 0x7f]), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x01]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0x00, 0x00]), Buffer.from([0x26, 0x00, 0x01, 0x61, 0x00, 0x01, 0x62])];
    const counts = { key: 0, none: 0, more: 0, referenceAccepts: 0 };
    const stricter = new Map<string, number>();
    const report = runFuzz({
      seed: fuzzSeed(0x3a77),
      cases: 100_000,
      timeLimitMs: 30_000,
      corpus,
      dictionary,
      prefixes: [Buffer.from([0x10]), Buffer.from([0x10, 0x20, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05])],
      check: (c) => {
        const ends = someEnds(c.input.length, 3, c.random);
        const noise = Math.floor(c.random() * 256);
        const reference = referenceConnect(c.input);
        if (reference !== null) counts.referenceAccepts++;
        for (const [reader, field] of [
          [readMqttClientId, 'clientId'],
          [readMqttUsername, 'username'],
        ] as const) {
          const ours = checkChunking(reader, c.input, ends, DEFAULT_INSPECT_BYTES, noise);
          counts[ours.kind]++;
          // With the whole packet here, the answer is final: no field may wait for bytes past it.
          if (ours.kind === 'more' && completePacketLength(c.input) !== null) throw new Error(`${field}: more, with the whole packet here`);
          const theirs = reference?.[field];
          if (ours.kind === 'key' && ours.key !== theirs) throw new Error(`${field}: ours ${answer(ours)}, mqtt-packet ${reference === null ? 'refuses' : JSON.stringify(theirs)}`);
          if (reference !== null && ours.kind !== 'key') {
            if (ours.kind !== 'none' || !STRICTER.includes(ours.reason) || (theirs !== undefined && theirs !== '' && ours.reason === STRICTER[6])) {
              throw new Error(`${field}: mqtt-packet reads ${JSON.stringify(theirs)}, ours ${answer(ours)}`);
            }
            if (ours.reason === STRICTER[2] && ![reference.clientId, reference.will?.topic, reference.username].some((v) => v !== undefined && /[\ufffd\0]/u.test(v))) {
              throw new Error(`${field}: refused as bad UTF-8, but mqtt-packet decoded every string cleanly`);
            }
            stricter.set(ours.reason, (stricter.get(ours.reason) ?? 0) + 1);
          }
        }
      },
    });
    console.log(`mqtt fuzz: seed 0x${report.seed.toString(16)}, ${report.cases} cases (x2 readers) in ${report.elapsedMs} ms; answers ${JSON.stringify(counts)}; stricter than mqtt-packet: ${JSON.stringify(Object.fromEntries(stricter))}`);
    expect(counts.key).toBeGreaterThan(1000);
  }, 60_000);
});
