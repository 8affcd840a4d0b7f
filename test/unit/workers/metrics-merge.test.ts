import { describe, expect, it } from 'vitest';
import { Departed, mergeFamilies, parseExposition } from '../../../src/workers/metrics-merge.js';

const OWN = `# HELP process_cpu_user_seconds_total CPU.
# TYPE process_cpu_user_seconds_total counter
process_cpu_user_seconds_total 1.5

# HELP tether_connections_total Closed.
# TYPE tether_connections_total counter

# HELP tether_connections_active Open.
# TYPE tether_connections_active gauge
tether_connections_active{listener="l",upstream="a"} 0

# HELP tether_upstream_up Up.
# TYPE tether_upstream_up gauge
tether_upstream_up{listener="l",upstream="a"} 1

# HELP tether_event_loop_delay_seconds Delay.
# TYPE tether_event_loop_delay_seconds gauge
tether_event_loop_delay_seconds 0.001
`;

function worker(ok: number, active: number, up: number, delay: number, cpu: number): string {
  return `# HELP process_cpu_user_seconds_total CPU.
# TYPE process_cpu_user_seconds_total counter
process_cpu_user_seconds_total ${cpu}

# HELP tether_connections_total Closed.
# TYPE tether_connections_total counter
tether_connections_total{listener="l",upstream="a",outcome="ok"} ${ok}

# HELP tether_connections_active Open.
# TYPE tether_connections_active gauge
tether_connections_active{listener="l",upstream="a"} ${active}

# HELP tether_upstream_up Up.
# TYPE tether_upstream_up gauge
tether_upstream_up{listener="l",upstream="a"} ${up}

# HELP tether_event_loop_delay_seconds Delay.
# TYPE tether_event_loop_delay_seconds gauge
tether_event_loop_delay_seconds ${delay}
`;
}

function merged(departed = new Departed()): string {
  const workers = [
    { id: 1, exposition: parseExposition(worker(10, 2, 0, 0.004, 2)) },
    { id: 2, exposition: parseExposition(worker(5, 1, 0, 0.002, 3)) },
  ];
  return `${mergeFamilies(parseExposition(OWN), workers, departed).join('\n\n')}\n`;
}

describe('merging the workers\' expositions', () => {
  it('sums tether_* series, keeps upstream_up the control plane\'s, takes the worst loop delay, labels process metrics per worker', () => {
    const text = merged();
    expect(text).toContain('\ntether_connections_total{listener="l",upstream="a",outcome="ok"} 15\n');
    expect(text).toContain('\ntether_connections_active{listener="l",upstream="a"} 3\n');
    expect(text).toContain('\ntether_upstream_up{listener="l",upstream="a"} 1\n');
    expect(text).toContain('\ntether_event_loop_delay_seconds 0.004\n');
    expect(text).toContain('\nprocess_cpu_user_seconds_total 1.5\nprocess_cpu_user_seconds_total{worker="1"} 2\nprocess_cpu_user_seconds_total{worker="2"} 3\n');
    // Families in the control plane's order, each with its HELP and TYPE once.
    expect(text.match(/^# TYPE /gm)).toHaveLength(5);
    expect(text.indexOf('# HELP process_cpu')).toBeLessThan(text.indexOf('# HELP tether_connections_total'));
  });

  it('keeps what a dead worker counted in the counters, not in the gauges', () => {
    const departed = new Departed();
    departed.add(parseExposition(worker(7, 4, 1, 0.5, 9)));
    const text = merged(departed);
    expect(text).toContain('outcome="ok"} 22\n');
    expect(text).toContain('\ntether_connections_active{listener="l",upstream="a"} 3\n');
    expect(text).toContain('\ntether_event_loop_delay_seconds 0.004\n');
  });

  it('reads prom-client\'s special values back', () => {
    const family = parseExposition('# HELP x_h H.\n# TYPE x_h gauge\nx_h{a="b c"} +Inf\nx_h Nan\n').get('x_h')!;
    expect([...family.samples.values()]).toEqual([Number.POSITIVE_INFINITY, Number.NaN]);
    expect([...family.samples.keys()]).toEqual(['x_h{a="b c"}', 'x_h']);
  });
});
