import { pino, type Logger, type LevelWithSilent } from 'pino';
import { xxh32String } from './hashing/hash.js';

export type { Logger };

/**
 * One pino root per process, JSON on stdout. Components take a child made once at
 * start-up (never per connection), so bindings are serialised once.
 */
export function createLogger(level: LevelWithSilent, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      // A Redis URL may carry a password; admin tokens must never reach a log.
      redact: { paths: ['store', 'url', 'adminToken', 'authorization'], censor: '***' },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

const KEY_LOG_SEED = 0x7e7e7e7e;

/**
 * Keys are secrets (session ids, tokens): logs carry this 8-hex-digit hash instead.
 * A seed other than the routing hash's keeps log hashes from revealing ring positions.
 */
export function keyHashForLog(key: string): string {
  return xxh32String(key, KEY_LOG_SEED).toString(16).padStart(8, '0');
}
