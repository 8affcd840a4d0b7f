// Types for node-builds.mjs.
export function versionOf(node: string): string;
export const nodeBuildsAvailable: boolean;
export function nodeBuild(version: string, why: string): string;
