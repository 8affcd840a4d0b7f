/**
 * How admin changes kept in a shared store combine with a listener's configured
 * upstreams. Pure: no I/O, no clock (callers pass `now`).
 *
 * The rule: the file gives the base membership; an admin change to an upstream is
 * stored with what the file said of that upstream when the change was made (`base`).
 * It holds, on every instance, across SIGHUP reloads and restarts, for as long as the
 * instance's file still says that. Once a file says something else of that upstream
 * (it was added to, removed from or changed in the file), the file wins there: an
 * edited file is the newer word. Drains are not part of files, so a shared drain
 * holds until an undrain or a DELETE, whatever the file says.
 *
 * Records exist only where the admin's word differs from the file: a PUT back to the
 * file's address and weight, or a DELETE of an upstream the file does not have, clears
 * the record instead of writing one.
 */
import type { UpstreamSpec } from '../config/types.js';
import type { MemberSpec, MembershipSnapshot, MembershipWrite } from '../store/types.js';

/** An admin API call that changes membership. */
export type AdminChange =
  | { readonly op: 'put'; readonly upstream: string; readonly host: string; readonly port: number; readonly weight: number }
  | { readonly op: 'delete'; readonly upstream: string }
  | { readonly op: 'drain'; readonly upstream: string; readonly deadlineS?: number }
  | { readonly op: 'undrain'; readonly upstream: string };

export interface EffectiveMembership {
  /** The file's upstreams in file order, with the admin's changes; added ones after, by name. */
  readonly upstreams: readonly UpstreamSpec[];
  /** Upstreams to drain, with their deadline (epoch ms) or null. */
  readonly draining: ReadonlyMap<string, number | null>;
}

export function sameSpec(a: MemberSpec | null, b: MemberSpec | null): boolean {
  if (a === null || b === null) return a === b;
  return a.host === b.host && a.port === b.port && a.weight === b.weight;
}

function specOf(base: readonly UpstreamSpec[], name: string): MemberSpec | null {
  const found = base.find((u) => u.name === name);
  return found === undefined ? null : { host: found.host, port: found.port, weight: found.weight };
}

/** The membership a listener with these file upstreams should have, given the store. */
export function effectiveMembership(base: readonly UpstreamSpec[], snapshot: MembershipSnapshot): EffectiveMembership {
  const result = new Map<string, UpstreamSpec>(base.map((u) => [u.name, u]));
  const added: UpstreamSpec[] = [];
  for (const [name, record] of snapshot.members) {
    const file = result.get(name);
    // The file has moved on since the admin's change: the file wins.
    if (!sameSpec(record.base, file === undefined ? null : { host: file.host, port: file.port, weight: file.weight })) continue;
    if (record.member === 'removed') {
      result.delete(name);
      continue;
    }
    const spec: UpstreamSpec = { name, host: record.member.host, port: record.member.port, weight: record.member.weight };
    if (file === undefined) added.push(spec);
    else result.set(name, spec);
  }
  added.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const spec of added) result.set(spec.name, spec);
  const draining = new Map<string, number | null>();
  for (const [name, drain] of snapshot.drains) if (result.has(name)) draining.set(name, drain.deadlineAt);
  return { upstreams: [...result.values()], draining };
}

/** What to store for an admin call made by instance `by` against file upstreams `base`. */
export function writeFor(change: AdminChange, base: readonly UpstreamSpec[], by: string, now: number): MembershipWrite {
  const file = specOf(base, change.upstream);
  const upstream = change.upstream;
  switch (change.op) {
    case 'put': {
      const member: MemberSpec = { host: change.host, port: change.port, weight: change.weight };
      return { upstream, member: sameSpec(member, file) ? null : { member, base: file, by, at: now } };
    }
    case 'delete':
      // A removed upstream has no drain; one the file lacks needs no record to stay away.
      return { upstream, member: file === null ? null : { member: 'removed', base: file, by, at: now }, drain: null };
    case 'drain':
      return { upstream, drain: { deadlineAt: change.deadlineS === undefined ? null : now + change.deadlineS * 1000, by, at: now } };
    case 'undrain':
      return { upstream, drain: null };
  }
}
