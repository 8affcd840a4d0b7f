import { describe, expect, it } from 'vitest';
import { cachedPins, guardPins } from '../../../src/store/guard.js';
import type { ToControlPlane } from '../../../src/workers/messages.js';
import { IpcPinStore } from '../../../src/workers/pin-client.js';

/** A worker's pin store, with what it sends to the control plane recorded (no process behind it). */
function workerPins(): { store: IpcPinStore; sent: ToControlPlane[] } {
  const sent: ToControlPlane[] = [];
  const store = new IpcPinStore(100, (message) => {
    sent.push(message);
    return true;
  });
  return { store, sent };
}

/** Calls reach the cache first: what they send goes a turn later. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function lastAsk(sent: readonly ToControlPlane[]): number {
  const ask = sent.at(-1)!;
  if (ask.type !== 'pin-get' && ask.type !== 'pin-set') throw new Error(`not a question: ${ask.type}`);
  return ask.id;
}

describe("a worker's pins with TETHER_STORE=memory", () => {
  it('reads a pin it has heard of from its cache, and asks the control plane for one it has not', async () => {
    const { store, sent } = workerPins();
    store.heard('l', 'k1', 'a', 60);
    expect(await store.pins('l').get('k1')).toBe('a');
    expect(sent).toEqual([]);
    const asked = store.pins('l').get('k2');
    await tick();
    expect(sent).toEqual([{ type: 'pin-get', id: lastAsk(sent), listener: 'l', key: 'k2' }]);
    store.answered(lastAsk(sent), { upstream: 'b' });
    expect(await asked).toBe('b');
    // Cached now: no second question.
    expect(await store.pins('l').get('k2')).toBe('b');
    expect(sent).toHaveLength(1);
    await store.close();
  });

  it('drops a pin the control plane deleted or evicted', async () => {
    const { store, sent } = workerPins();
    store.heard('l', 'k', 'a', 60);
    store.heard('l', 'k', null, 0);
    const asked = store.pins('l').get('k');
    await tick();
    expect(sent.at(-1)).toMatchObject({ type: 'pin-get', key: 'k' });
    store.answered(lastAsk(sent), { upstream: null });
    expect(await asked).toBeNull();
    await store.close();
  });

  it('does not cache an answer that a broadcast for the same key overtook', async () => {
    const { store, sent } = workerPins();
    const asked = store.pins('l').get('k');
    await tick();
    const id = lastAsk(sent);
    // Read in one go from the channel: the answer (pinned to a), then its eviction.
    store.answered(id, { upstream: 'a' });
    store.heard('l', 'k', null, 0);
    expect(await asked).toBeNull();
    const again = store.pins('l').get('k');
    await tick();
    expect(sent.filter((m) => m.type === 'pin-get')).toHaveLength(2);
    store.answered(lastAsk(sent), { upstream: null });
    expect(await again).toBeNull();
    await store.close();
  });

  it('writes through (answered once held), deletes, and sends touches in one batch', async () => {
    const { store, sent } = workerPins();
    const pins = store.pins('l');
    const set = pins.set('k', 'a', 60);
    await tick();
    expect(sent.at(-1)).toMatchObject({ type: 'pin-set', listener: 'l', key: 'k', upstream: 'a', ttlS: 60 });
    store.answered(lastAsk(sent), { upstream: 'a' });
    await set;
    await pins.touch('k', 60);
    await pins.touch('k', 60);
    await pins.delete('k');
    expect(sent.at(-1)).toEqual({ type: 'pin-delete', listener: 'l', key: 'k' });
    await store.close();
    expect(sent.at(-1)).toEqual({ type: 'pin-touch', listener: 'l', keys: ['k'], ttlS: 60 });
  });

  it('answers from its copy at once, through the guard: a pin it holds, renewed in the next batch; none for one it does not', async () => {
    const { store, sent } = workerPins();
    let errors = 0;
    const guarded = guardPins(store, 'l', { timeoutMs: 50, onError: () => errors++ });
    const cache = cachedPins(guarded);
    expect(cache).not.toBeNull();
    store.heard('l', 'k', 'a', 60);
    expect(cache!.cached('k')).toBe('a');
    expect(cache!.cached('other')).toBeNull(); // not known here: the caller asks get()
    cache!.renew('k', 60);
    expect(sent).toEqual([]); // nothing sent per use
    await store.close();
    expect(sent).toEqual([{ type: 'pin-touch', listener: 'l', keys: ['k'], ttlS: 60 }]);
    expect(errors).toBe(0);
  });
});
