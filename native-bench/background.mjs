/**
 * Background load on a shared machine: how much CPU processes outside this
 * benchmark's own tree take during a measurement, and a short wait for a quiet
 * moment before one; what one process has used and how often it woke, and its
 * children. Used by run.mjs and by scenario scripts that run alone.
 * Linux only: reads /proc.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).stdout?.trim()) || 100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Fields of /proc/PID/stat from #3 (state) on. */
export function statFields(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The processes `pid` started (nginx's workers, tether's). */
export function childrenOf(pid) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (Number(statFields(name)[1]) === pid) out.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** CPU seconds (user + system) one process has used so far; 0 once it is gone. */
export function cpuOf(pid) {
  try {
    const f = statFields(pid);
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** How often every thread of `pids` has gone to sleep and woken so far (voluntary context switches). */
export function wakesOf(pids) {
  let wakes = 0;
  for (const pid of pids) {
    let tasks;
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        const match = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8'));
        if (match) wakes += Number(match[1]);
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return wakes;
}

/** Machine-wide busy CPU ticks, and those of this process and its descendants. */
export function cpuSnapshot() {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu;
  const busy = user + nice + system + irq + softirq + (steal ?? 0);
  const parent = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      parent.set(Number(name), Number(statFields(name)[1]));
    } catch {
      /* exited meanwhile */
    }
  }
  const ours = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!ours.has(pid) && ours.has(ppid)) {
        ours.add(pid);
        grew = true;
      }
    }
  }
  let own = 0;
  for (const pid of ours) {
    try {
      const f = statFields(pid);
      own += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      /* exited meanwhile */
    }
  }
  return { at: performance.now(), busy, own };
}

/** CPU other processes used between two snapshots, in % of one core. */
export function otherCpuPct(a, b) {
  const seconds = (b.at - a.at) / 1000;
  const other = b.busy - a.busy - (b.own - a.own);
  return Math.max(0, (other / CLK_TCK / seconds) * 100);
}

/** Wait up to `maxMs` for a half-second in which others use under `pct`% of a core. */
export async function waitQuiet(maxMs = 10_000, pct = 25) {
  const until = Date.now() + maxMs;
  for (;;) {
    const a = cpuSnapshot();
    await sleep(500);
    const used = otherCpuPct(a, cpuSnapshot());
    if (used < pct || Date.now() >= until) return used;
  }
}
