export type { InspectReader, InspectResult } from './types.js';
export { DEFAULT_INSPECT_BYTES } from './types.js';
export { readSni } from './tls-client-hello.js';
export { readMqttClientId, readMqttUsername } from './mqtt-connect.js';
export { readRdpCookie } from './rdp-cookie.js';
export { compilePrefix, type PrefixOptions } from './prefix.js';
