import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { InlineTableBuilder } from './inline.js';
import type { TableBuilder } from './types.js';
import { WorkerTableBuilder, type WorkerBuilderOptions } from './worker.js';

/** TETHER_RING_THREADS: 0 builds inline on the main thread, N > 0 in N worker threads. */
export function createTableBuilder(threads: number, options: WorkerBuilderOptions = {}): TableBuilder {
  return threads === 0 ? new InlineTableBuilder() : new WorkerTableBuilder(threads, options);
}

/**
 * The process's builder: TETHER_RING_THREADS worker threads, or inline when asked (0)
 * or when the worker file cannot be found (logged).
 */
export function processTableBuilder(threads: number, logger: Logger): TableBuilder {
  try {
    return createTableBuilder(threads, {
      onThreadError: (err) => logger.error({ error: err.message }, 'ring build thread failed; builds are retried'),
    });
  } catch (err) {
    logger.error({ error: errorMessage(err) }, 'ring build threads unavailable: building tables on the main thread');
    return new InlineTableBuilder();
  }
}
