import type { LearnRule } from '../config/types.js';
import { cookieValue } from './keys.js';

/** TETHER_LEARN made into one function (learnRules): the keys a response head teaches. */
export type LearnRules = (rawHeaders: readonly string[]) => string[];

/**
 * The keys an upstream's response head teaches (TETHER_LEARN), in rule order,
 * without duplicates, as a function built once per configuration. `rawHeaders` is
 * node:http's flat [name, value, ...] list, so a header sent twice (two Set-Cookie
 * lines) is seen twice.
 *
 * `header:NAME=REGEX` takes the first capture group (or the whole match) of each
 * NAME header; `set-cookie:NAME` takes the value of each cookie NAME being set. An
 * empty value (a cookie being deleted) teaches nothing.
 */
export function learnRules(rules: readonly LearnRule[]): LearnRules {
  const readers = rules.map(ruleReader);
  return (rawHeaders) => {
    const keys: string[] = [];
    for (const { wanted, read } of readers) {
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        if (rawHeaders[i]!.length !== wanted.length || rawHeaders[i]!.toLowerCase() !== wanted) continue;
        const key = read(rawHeaders[i + 1]!);
        if (key !== null && key !== '' && !keys.includes(key)) keys.push(key);
      }
    }
    return keys;
  };
}

/** The header one rule reads (lower-cased) and what it takes from each value. */
function ruleReader(rule: LearnRule): { readonly wanted: string; readonly read: (value: string) => string | null } {
  if (rule.kind === 'header') {
    const pattern = rule.pattern;
    return {
      wanted: rule.name,
      read: (value) => {
        const match = pattern.exec(value);
        return match === null ? null : (match[1] ?? match[0]);
      },
    };
  }
  const name = rule.name;
  return {
    wanted: 'set-cookie',
    // Only the name=value pair before the first ';' (attributes follow it).
    read: (value) => {
      const semi = value.indexOf(';');
      return cookieValue([semi < 0 ? value : value.slice(0, semi)], name);
    },
  };
}

/** Each configured rule list's function, made on its first response. */
const learners = new WeakMap<readonly LearnRule[], LearnRules>();

/** learnRules(rules) applied, the function built once for each rule list (a configuration's). */
export function learnedKeys(rules: readonly LearnRule[], rawHeaders: readonly string[]): string[] {
  let fn = learners.get(rules);
  if (fn === undefined) {
    fn = learnRules(rules);
    learners.set(rules, fn);
  }
  return fn(rawHeaders);
}
