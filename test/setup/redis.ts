/**
 * redis-server and redis-cli for the shared-store tests (which start their own servers
 * on free ports): installed with apt-get when missing and running as root, else one
 * line saying the command that installs them.
 */
import { spawnSync } from 'node:child_process';

const COMMAND = 'apt-get install -y redis-server';

function onPath(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

function apt(args: string[]): void {
  const run = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (run.status !== 0) throw new Error(`redis-server is missing and \`apt-get ${args.join(' ')}\` failed (exit ${run.status ?? run.signal}): run \`${COMMAND}\``);
}

export function ensureRedis(): void {
  if (onPath('redis-server') && onPath('redis-cli')) return;
  if (process.getuid?.() !== 0 || !onPath('apt-get')) throw new Error(`redis-server not found on PATH: run \`sudo ${COMMAND}\``);
  process.stderr.write(`tests: installing redis-server (${COMMAND})\n`);
  apt(['update', '-qq']);
  apt(['install', '-y', '-qq', 'redis-server']);
  if (!onPath('redis-server')) throw new Error(`redis-server still not on PATH after \`${COMMAND}\``);
}
