// Types for chart.mjs (the TypeScript tests import the benchmark's .mjs modules).
import type { BenchResults } from './format.mjs';

export function renderChart(results: BenchResults): string;
