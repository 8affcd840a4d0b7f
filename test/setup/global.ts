/**
 * vitest globalSetup: what `npm test` needs beyond Node and npm, provisioned once per
 * run before any test file starts, so a fresh machine passes with `npm ci && npm test`.
 */
import type { TestProject } from 'vitest/node';
import { ensureBrowser, type BrowserSetup } from './browser.js';
import { ensureRedis } from './redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    browser: BrowserSetup;
  }
}

export default function setup(project: TestProject): void {
  ensureRedis();
  project.provide('browser', ensureBrowser());
}
