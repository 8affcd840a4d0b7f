/**
 * One suite for every store backend (as piscina tests every TaskQueue alike): a
 * runner file per backend calls pinStoreSuite with a way to make a fresh store.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/types.js';
import { waitFor } from '../../helpers/clients.js';

export interface StoreFixture {
  readonly store: Store;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function pinStoreSuite(backend: string, make: () => Promise<StoreFixture>): void {
  describe(`PinStore (${backend})`, () => {
    let fixture: StoreFixture;
    let listener = 0;
    /** A listener name of its own per test: no test sees another's pins. */
    let name: string;
    beforeEach(async () => {
      fixture = await make();
      name = `l${++listener}-${process.pid}-${Date.now()}`;
    });
    afterEach(async () => {
      await fixture.close();
    });

    it('an unknown key has no pin', async () => {
      expect(await fixture.store.pins(name).get('nobody')).toBeNull();
    });

    it('set pins a key; set again replaces; delete removes', async () => {
      const pins = fixture.store.pins(name);
      await pins.set('upload-1', 'app1', 60);
      expect(await pins.get('upload-1')).toBe('app1');
      await pins.set('upload-1', 'app2', 60);
      expect(await pins.get('upload-1')).toBe('app2');
      await pins.delete('upload-1');
      expect(await pins.get('upload-1')).toBeNull();
      await pins.delete('upload-1');
    });

    it('listeners never see each other’s pins', async () => {
      await fixture.store.pins(name).set('k', 'a', 60);
      expect(await fixture.store.pins(`${name}-other`).get('k')).toBeNull();
      expect(await fixture.store.pins(name).get('k')).toBe('a');
    });

    it('keys of any text round-trip: unicode, separators, 10 kB', async () => {
      const pins = fixture.store.pins(name);
      const keys = ['sid=ü☃', 'a:b:c', 'line\nbreak', ' ', 'x'.repeat(10_000), 'pin:other:listener'];
      for (const [i, key] of keys.entries()) await pins.set(key, `u${i}`, 60);
      for (const [i, key] of keys.entries()) expect(await pins.get(key)).toBe(`u${i}`);
    });

    it('a thousand pins written at once are all read back', async () => {
      const pins = fixture.store.pins(name);
      const keys = Array.from({ length: 1000 }, (_, i) => `session-${i}`);
      await Promise.all(keys.map((k, i) => pins.set(k, `u${i % 7}`, 60)));
      const read = await Promise.all(keys.map((k) => pins.get(k)));
      expect(read).toEqual(keys.map((_, i) => `u${i % 7}`));
    });

    it('a pin expires ttlS after it was set', async () => {
      const pins = fixture.store.pins(name);
      await pins.set('short', 'a', 1);
      await pins.set('long', 'b', 60);
      expect(await pins.get('short')).toBe('a');
      await waitFor(async () => (await pins.get('short')) === null, 10_000, 'the 1 s pin to expire', 100);
      expect(await pins.get('long')).toBe('b');
    });

    it('touch renews the TTL of a live pin and does not revive a missing one', async () => {
      const pins = fixture.store.pins(name);
      const setAt = Date.now();
      await pins.set('kept', 'a', 2);
      await sleep(300);
      await pins.touch('kept', 60);
      await pins.touch('never-set', 60);
      // Well past the first TTL: only the touch keeps it.
      await sleep(Math.max(0, setAt + 3_000 - Date.now()));
      expect(await pins.get('kept')).toBe('a');
      expect(await pins.get('never-set')).toBeNull();
    });
  });
}
