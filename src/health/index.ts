/** Active and passive health checking: checks.ts probes one address, monitor.ts keeps state. */
export { runCheck, type CheckResult, type CheckTarget } from './checks.js';
export {
  HealthMonitor,
  type HealthMonitorOptions,
  type HealthTarget,
  type TargetHealth,
} from './monitor.js';
