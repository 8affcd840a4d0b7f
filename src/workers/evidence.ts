import type { HealthReporter } from '../proxy/context.js';
import type { ToControlPlane } from './messages.js';

/**
 * A worker's passive health evidence for one listener, sent to the control plane's
 * monitor (the one judge of health). Failed connects always; a good connect only
 * after a failure to that upstream (it resets the failure streak there), so the
 * common case costs no message per connection.
 */
export function evidenceSender(listener: string, send: (message: ToControlPlane) => void): HealthReporter {
  const failing = new Set<string>();
  return {
    reportFailure(upstream: string, reason: string): void {
      failing.add(upstream);
      send({ type: 'evidence', listener, upstream, ok: false, reason });
    },
    reportSuccess(upstream: string): void {
      if (failing.delete(upstream)) send({ type: 'evidence', listener, upstream, ok: true, reason: 'connect ok' });
    },
  };
}
