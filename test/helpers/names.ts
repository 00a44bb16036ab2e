// Unique names for everything a test creates. Every namespace is named
// twt-<pid base36>-<random>-<label>, so the global sweep can remove what a killed
// run left behind without touching a run that is still going (its pid is alive).
import { randomBytes } from 'node:crypto';

export const TEST_PREFIX = 'twt-';

let seq = 0;

/** A unique netns name owned by this process (a sequence, so never the same twice in a run). */
export function uniqueName(label: string): string {
  return `${TEST_PREFIX}${process.pid.toString(36)}-${(seq++).toString(36)}${randomBytes(2).toString('hex')}-${label}`;
}

/** The pid that created a test namespace, or undefined if the name is not one of ours. */
export function ownerPid(name: string): number | undefined {
  const m = /^twt-([0-9a-z]+)-/.exec(name);
  return m ? parseInt(m[1]!, 36) : undefined;
}

/** A unique interface name that fits IFNAMSIZ (15 bytes): tw<6 hex><label up to 7>. */
export function uniqueIfname(label = ''): string {
  return `tw${randomBytes(3).toString('hex')}${label.slice(0, 7)}`;
}
