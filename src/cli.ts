#!/usr/bin/env node
/**
 * The `tether` command. Sizes V8's young generation before anything else is loaded
 * (young-generation.ts says why), then runs the CLI (main.ts).
 */
import { holdYoungGeneration } from './young-generation.js';

holdYoungGeneration();
await import('./main.js');
