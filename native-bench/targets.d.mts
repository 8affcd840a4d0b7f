// Types for targets.mjs (the TypeScript tests import the benchmark's .mjs modules).
import type { ResultsColumn } from './format.mjs';

export interface Target {
  ratio?: number;
  absolute?: number;
  unit?: string;
}

export interface TargetRow {
  id: string;
  label: string;
  heading: string;
  better: 'higher' | 'lower';
  tether: number | null;
  haproxy: number | null;
  naive: number | null;
  vsHaproxy: number | null;
  target: { text: string; met: boolean | null } | null;
  vsNaive: number | null;
  aheadOfNaive: boolean | null;
}

export interface HttpTargetRow {
  row: string;
  label: string;
  column: string;
  tether: number | null;
  haproxy: number | null;
  vsHaproxy: number | null;
  target: { text: string; met: boolean | null };
}

export const TARGETS: Readonly<Record<string, Target>>;
export const HTTP_TARGETS: Readonly<Record<string, Target>>;
export function targetText(target: Target, better: 'higher' | 'lower'): string;
export function targetRatio(target: Target, haproxyMedian: number | null | undefined): number | null;
export function evaluateTargets(summary: Record<string, ResultsColumn>): TargetRow[];
export function targetsMarkdown(rows: TargetRow[]): string;
export function evaluateHttpTargets(summary: Record<string, ResultsColumn>): HttpTargetRow[];
export function httpTargetsMarkdown(rows: HttpTargetRow[]): string;
