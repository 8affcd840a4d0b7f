import { MemoryStore } from '../../../src/store/memory.js';
import { pinStoreSuite } from './store.suite.js';

pinStoreSuite('memory', async () => {
  const store = new MemoryStore();
  return { store, close: () => store.close() };
});
