import { MORE, atLimit, clampEnd, clampLimit, key, none, type InspectResult } from './types.js';

/**
 * `mqtt:client-id` and `mqtt:username`: fields of an MQTT CONNECT (3.1 "MQIsdp"
 * level 3, 3.1.1 "MQTT" level 4, 5 "MQTT" level 5). Both readers share one walk
 * over the whole packet, which must be complete and exactly filled by its fields
 * before a key is given.
 * The walk's state is module-level: readers are synchronous, so a call allocates nothing.
 */

const CONNECT_FIXED_HEADER = 0x10; // type 1, flags 0
const MAX_VARINT_BYTES = 4;
const FLAG_RESERVED = 0x01;
const FLAG_WILL = 0x04;
const WILL_QOS_MASK = 0x18;
const WILL_QOS_SHIFT = 3;
const FLAG_WILL_RETAIN = 0x20;
const FLAG_PASSWORD = 0x40;
const FLAG_USERNAME = 0x80;
const MQTT = Buffer.from('MQTT', 'latin1');
const MQISDP = Buffer.from('MQIsdp', 'latin1');
/** Mosquitto bridges set the top bit of the protocol level. */
const LEVEL_BRIDGE_BIT = 0x80;

const NOT_CONNECT = none('mqtt: first byte is not CONNECT with flags 0');
const BAD_VARINT = none('mqtt: variable byte integer over 4 bytes');
const TOO_LONG = none('mqtt: CONNECT is longer than the inspect limit');
const PAST_PACKET = none('mqtt: a field runs past the remaining length');
const BAD_PROTOCOL = none('mqtt: protocol name and level are not MQTT 4/5 or MQIsdp 3');
const BAD_FLAGS = none('mqtt: connect flags break the rules (reserved bit, will QoS/retain, password without username)');
const BAD_UTF8 = none('mqtt: a string is not well-formed UTF-8 or holds U+0000');
const TRAILING = none('mqtt: bytes after the last field of CONNECT');
const NO_CLIENT_ID = none('mqtt: client identifier is empty');
const NO_USERNAME = none('mqtt: no username (flag not set, or empty)');

/** The walk's result besides its status: where the fields lie (start, end; -1 when absent). */
let clientIdStart = -1;
let clientIdEnd = -1;
let usernameStart = -1;
let usernameEnd = -1;

export function readMqttClientId(buf: Buffer, end: number, limit?: number): InspectResult {
  const bound = clampEnd(buf, end);
  const max = clampLimit(limit);
  const walked = walkConnect(buf, bound, max);
  if (walked !== null) return atLimit(walked, bound, max);
  return clientIdEnd > clientIdStart ? key(buf.toString('utf8', clientIdStart, clientIdEnd)) : NO_CLIENT_ID;
}

export function readMqttUsername(buf: Buffer, end: number, limit?: number): InspectResult {
  const bound = clampEnd(buf, end);
  const max = clampLimit(limit);
  const walked = walkConnect(buf, bound, max);
  if (walked !== null) return atLimit(walked, bound, max);
  return usernameEnd > usernameStart ? key(buf.toString('utf8', usernameStart, usernameEnd)) : NO_USERNAME;
}

// The walk's position; module-level so the helpers below share it without allocating.
let pos = 0;
let packetEnd = 0;

/** null when `buf[0 .. end)` starts with a complete, valid CONNECT (fields recorded above), else why not. */
function walkConnect(buf: Buffer, end: number, limit: number): InspectResult | null {
  clientIdStart = clientIdEnd = usernameStart = usernameEnd = -1;
  if (end < 1) return MORE;
  if (buf[0] !== CONNECT_FIXED_HEADER) return NOT_CONNECT;
  pos = 1;
  packetEnd = Infinity; // the remaining length is not known yet
  const remaining = varint(buf, end);
  if (remaining < 0) return remaining === -1 ? MORE : BAD_VARINT;
  if (pos + remaining > limit) return TOO_LONG;
  packetEnd = pos + remaining;

  let why = need(end, 2);
  if (why) return why;
  const nameLength = buf.readUInt16BE(pos);
  pos += 2;
  if (nameLength !== 4 && nameLength !== 6) return BAD_PROTOCOL;
  if ((why = need(end, nameLength + 1))) return why;
  let level = buf[pos + nameLength]!;
  if (level & LEVEL_BRIDGE_BIT) level -= LEVEL_BRIDGE_BIT;
  const mqtt = nameLength === 4 && startsWith(buf, pos, MQTT) && (level === 4 || level === 5);
  const mqisdp = nameLength === 6 && startsWith(buf, pos, MQISDP) && level === 3;
  if (!mqtt && !mqisdp) return BAD_PROTOCOL;
  pos += nameLength + 1;

  if ((why = need(end, 1 + 2))) return why;
  const flags = buf[pos]!;
  const will = (flags & FLAG_WILL) !== 0;
  const willQos = (flags & WILL_QOS_MASK) >> WILL_QOS_SHIFT;
  if (
    flags & FLAG_RESERVED ||
    willQos === 3 ||
    (!will && (willQos !== 0 || flags & FLAG_WILL_RETAIN)) ||
    // 3.1.1 [MQTT-3.1.2-22] (and 3.1): no password without a username; 5 allows it.
    (level !== 5 && flags & FLAG_PASSWORD && !(flags & FLAG_USERNAME))
  ) {
    return BAD_FLAGS;
  }
  pos += 1 + 2; // flags, keep alive

  if (level === 5 && (why = skipProperties(buf, end, CONNECT_PROPERTIES))) return why;
  if ((why = utf8String(buf, end))) return why;
  clientIdStart = pos - stringLength;
  clientIdEnd = pos;
  if (will) {
    if (level === 5 && (why = skipProperties(buf, end, WILL_PROPERTIES))) return why;
    if ((why = utf8String(buf, end))) return why; // will topic
    if ((why = binary(buf, end))) return why; // will payload
  }
  if (flags & FLAG_USERNAME) {
    if ((why = utf8String(buf, end))) return why;
    usernameStart = pos - stringLength;
    usernameEnd = pos;
  }
  if (flags & FLAG_PASSWORD && (why = binary(buf, end))) return why;
  return pos === packetEnd ? null : TRAILING;
}

/** Whether `buf` holds `word` at `at` (the caller has checked the bytes are there). */
function startsWith(buf: Buffer, at: number, word: Buffer): boolean {
  for (let i = 0; i < word.length; i++) if (buf[at + i] !== word[i]) return false;
  return true;
}

/** `n` more bytes at `pos`: none if past the packet, more if not here yet, else null. */
function need(end: number, n: number): InspectResult | null {
  if (pos + n > packetEnd) return PAST_PACKET;
  if (pos + n > end) return MORE;
  return null;
}

/** A variable byte integer at `pos` (advanced past it): its value, -1 if incomplete, -2 if over 4 bytes. */
function varint(buf: Buffer, end: number): number {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (pos >= end || pos >= packetEnd) return pos >= packetEnd ? -3 : -1;
    const b = buf[pos++]!;
    value += (b & 0x7f) * multiplier;
    if ((b & 0x80) === 0) return value;
    multiplier *= 128;
  }
  return -2;
}

// v5 property value shapes (MQTT 5 2.2.2.2).
const BYTE = 1;
const TWO = 2;
const FOUR = 4;
const STRING = 5; // UTF-8 string and binary data: both a two-byte length and bytes
const PAIR = 6;
/** Properties a CONNECT may carry (MQTT 5 3.1.2.11), by identifier; 0 where not allowed. */
const CONNECT_PROPERTIES = shapes({ 0x11: FOUR, 0x21: TWO, 0x27: FOUR, 0x22: TWO, 0x19: BYTE, 0x17: BYTE, 0x26: PAIR, 0x15: STRING, 0x16: STRING });
/** Properties a will may carry (MQTT 5 3.1.3.2). */
const WILL_PROPERTIES = shapes({ 0x18: FOUR, 0x01: BYTE, 0x02: FOUR, 0x03: STRING, 0x08: STRING, 0x09: STRING, 0x26: PAIR });

function shapes(table: Record<number, number>): Uint8Array {
  const out = new Uint8Array(128);
  for (const [id, shape] of Object.entries(table)) out[Number(id)] = shape;
  return out;
}

const BAD_PROPERTIES = none('mqtt: v5 properties are not allowed there or do not fill their length exactly');

/**
 * v5 properties: a varint length, then properties that fill it exactly, each one
 * allowed in this place. Their values are not keys, so they are framed, not decoded.
 */
function skipProperties(buf: Buffer, end: number, allowed: Uint8Array): InspectResult | null {
  const length = varint(buf, end);
  if (length === -1) return MORE;
  if (length === -2) return BAD_VARINT;
  if (length < 0) return PAST_PACKET;
  const why = need(end, length);
  if (why) return why;
  const stop = pos + length;
  let at = pos;
  while (at < stop) {
    const id = buf[at++]!;
    const shape = id < 128 ? allowed[id]! : 0;
    if (shape === 0) return BAD_PROPERTIES;
    let size: number;
    if (shape === STRING) size = at + 2 <= stop ? 2 + buf.readUInt16BE(at) : Infinity;
    else if (shape === PAIR) {
      const first = at + 2 <= stop ? 2 + buf.readUInt16BE(at) : Infinity;
      size = at + first + 2 <= stop ? first + 2 + buf.readUInt16BE(at + first) : Infinity;
    } else size = shape;
    if (at + size > stop) return BAD_PROPERTIES;
    at += size;
  }
  pos = stop;
  return null;
}

let stringLength = 0;

/** A two-byte length and that many bytes of well-formed UTF-8 without U+0000; `pos` moves past it. */
function utf8String(buf: Buffer, end: number): InspectResult | null {
  let why = binary(buf, end);
  if (why) return why;
  if (!isWellFormedUtf8(buf, pos - stringLength, pos)) why = BAD_UTF8;
  return why;
}

/** A two-byte length and that many bytes; `pos` moves past them, `stringLength` says how many. */
function binary(buf: Buffer, end: number): InspectResult | null {
  let why = need(end, 2);
  if (why) return why;
  const length = buf.readUInt16BE(pos);
  pos += 2;
  if ((why = need(end, length))) return why;
  pos += length;
  stringLength = length;
  return null;
}

/** RFC 3629 UTF-8: no overlong forms, no surrogates, nothing over U+10FFFF; MQTT also bans U+0000. */
function isWellFormedUtf8(buf: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const b = buf[i]!;
    if (b < 0x80) {
      if (b === 0) return false;
      i++;
      continue;
    }
    let count: number;
    let low = 0x80;
    let high = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) count = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      count = 2;
      if (b === 0xe0) low = 0xa0; // overlong
      else if (b === 0xed) high = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      count = 3;
      if (b === 0xf0) low = 0x90; // overlong
      else if (b === 0xf4) high = 0x8f; // over U+10FFFF
    } else return false;
    if (i + count >= end) return false;
    const second = buf[i + 1]!;
    if (second < low || second > high) return false;
    for (let k = 2; k <= count; k++) {
      const next = buf[i + k]!;
      if (next < 0x80 || next > 0xbf) return false;
    }
    i += count + 1;
  }
  return true;
}
