#!/usr/bin/env node
/**
 * The whole suite under another Node than the one running npm:
 *
 *   npm run test:node                  the newest LTS (NEWEST_LTS below)
 *   npm run test:node -- 22.23.5 ARGS  that version; ARGS go to vitest
 *
 * The official linux-x64 build comes from npm, once (test/setup/node-builds.mjs). It
 * runs vitest, and is first on PATH, so every tether a test starts (a child `node`)
 * runs on it too. CI runs the suite on the machine's Node (the oldest tether
 * supports, package.json "engines") and then this way on the newest LTS.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeBuild, nodeBuildsAvailable, versionOf } from './setup/node-builds.mjs';

const NEWEST_LTS = '26.12.1';
const ROOT = fileURLToPath(new URL('../', import.meta.url));

const [first, ...rest] = process.argv.slice(2);
const version = first !== undefined && /^\d+(\.\d+){0,2}$/.test(first) ? first : NEWEST_LTS;
const vitestArgs = version === first ? rest : process.argv.slice(2);

if (!nodeBuildsAvailable) {
  process.stderr.write(`test:node: no official Node build on npm for ${process.platform}-${process.arch}; run npm test with that Node instead\n`);
  process.exit(2);
}
let node;
try {
  node = nodeBuild(version, 'to run the suite under');
} catch (err) {
  process.stderr.write(`test:node: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
process.stderr.write(`test:node: the suite under Node ${versionOf(node)} (${node})\n`);
const run = spawnSync(node, [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...vitestArgs], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, PATH: `${dirname(node)}:${process.env.PATH ?? ''}` },
});
process.exit(run.status ?? 1);
