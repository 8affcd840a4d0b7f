import type { LearnRule } from '../config/types.js';
import { cookieValue } from './keys.js';

/**
 * The keys an upstream's response head teaches (TETHER_LEARN), in rule order,
 * without duplicates. `rawHeaders` is node:http's flat [name, value, ...] list, so a
 * header sent twice (two Set-Cookie lines) is seen twice.
 *
 * `header:NAME=REGEX` takes the first capture group (or the whole match) of each
 * NAME header; `set-cookie:NAME` takes the value of each cookie NAME being set. An
 * empty value (a cookie being deleted) teaches nothing.
 */
export function learnedKeys(rules: readonly LearnRule[], rawHeaders: readonly string[]): string[] {
  const keys: string[] = [];
  for (const rule of rules) {
    const wanted = rule.kind === 'header' ? rule.name : 'set-cookie';
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      if (rawHeaders[i]!.length !== wanted.length || rawHeaders[i]!.toLowerCase() !== wanted) continue;
      const value = rawHeaders[i + 1]!;
      let key: string | null = null;
      if (rule.kind === 'header') {
        const match = rule.pattern.exec(value);
        if (match !== null) key = match[1] ?? match[0];
      } else {
        // Only the name=value pair before the first ';' (attributes follow it).
        const semi = value.indexOf(';');
        key = cookieValue([semi < 0 ? value : value.slice(0, semi)], rule.name);
      }
      if (key !== null && key !== '' && !keys.includes(key)) keys.push(key);
    }
  }
  return keys;
}
