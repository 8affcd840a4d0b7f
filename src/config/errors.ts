import { ConfigError } from '../errors.js';

/**
 * A bad value inside a JSON settings file. Still a ConfigError for `variable`
 * (TETHER_CONFIG), with the place in the file put before the value, so the message
 * stays one line that starts with the variable:
 * `TETHER_CONFIG: listeners[0].hash: "nope" is not one of ring, maglev, rendezvous, modulo`.
 */
export class ConfigFileError extends ConfigError {
  /** Where in the file: `listeners[0].upstreams[1]`; '' for the file as a whole. */
  readonly location: string;
  constructor(variable: string, location: string, value: unknown, expected: string) {
    super(variable, value, expected);
    this.name = 'ConfigFileError';
    this.location = location;
    if (location !== '') this.message = `${variable}: ${location}: ${this.message.slice(variable.length + 2)}`;
  }
}

/** `['listeners', 0, 'upstreams', 1]` -> `listeners[0].upstreams[1]`. */
export function formatLocation(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}
