import type { LearnRule } from '../config/types.js';
import { cookieValue } from './keys.js';
import type { HeadFields } from './types.js';

/** TETHER_LEARN made into one function (learnRules): the keys a response head teaches. */
export type LearnRules = (head: HeadFields) => readonly string[];

const NONE: readonly string[] = [];

/**
 * The keys an upstream's response head teaches (TETHER_LEARN), in rule order,
 * without duplicates, as a function built once per configuration. A header sent
 * twice (two Set-Cookie lines) is seen twice.
 *
 * `header:NAME=REGEX` takes the first capture group (or the whole match) of each
 * NAME header; `set-cookie:NAME` takes the value of each cookie NAME being set. An
 * empty value (a cookie being deleted) teaches nothing.
 */
export function learnRules(rules: readonly LearnRule[]): LearnRules {
  const readers = rules.map(ruleReader);
  return (head) => {
    let keys: string[] | null = null;
    for (const { wanted, read } of readers) {
      for (const value of head.values(wanted)) {
        const key = read(value);
        if (key !== null && key !== '' && !(keys ??= []).includes(key)) keys.push(key);
      }
    }
    return keys ?? NONE;
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
export function learnedKeys(rules: readonly LearnRule[], head: HeadFields): readonly string[] {
  let fn = learners.get(rules);
  if (fn === undefined) {
    fn = learnRules(rules);
    learners.set(rules, fn);
  }
  return fn(head);
}
