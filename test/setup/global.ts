/**
 * vitest globalSetup: what `npm test` needs beyond Node and npm, provisioned once per
 * run before any test file starts, so a fresh machine passes with `npm ci && npm test`.
 */
import type { TestProject } from 'vitest/node';
import { errorMessage } from '../../src/errors.js';
import { ensureBrowser, type BrowserSetup } from './browser.js';
import { ensureReusePortNode } from './node-reuseport.js';
import { ensureRedis } from './redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    browser: BrowserSetup;
    /** A Node binary with reusePort (node-reuseport.ts), or null where none is used. */
    reusePortNode: string | null;
  }
}

export default function setup(project: TestProject): void {
  try {
    ensureRedis();
    project.provide('browser', ensureBrowser());
    project.provide('reusePortNode', ensureReusePortNode());
  } catch (err) {
    // One line that says what to run, not a stack trace through vitest's internals.
    process.stderr.write(`tests: ${errorMessage(err)}\n`);
    process.exit(1);
  }
}
