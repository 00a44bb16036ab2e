// Network namespace handles on disk, the one check: whether a path is a live namespace (a
// bind mount or /proc/PID/ns/net lives on nsfs; that it is a *network* namespace is checked
// by setns(CLONE_NEWNET) when it is entered), which namespace it is (the device and inode of
// its nsfs file: what stat() of any path to it gives, a bind mount, /proc/PID/ns/net or a
// symlink to either; never its path), and whether it is the host's or this process's own.
import * as fs from 'node:fs';

export const NSFS_MAGIC = 0x6e736673;

/** 'ok' when p is on nsfs, 'not-netns' when it is another file, else statfs's errno code. */
export function probeNetns(p: string): 'ok' | 'not-netns' | `E${string}` {
  try {
    return fs.statfsSync(p).type === NSFS_MAGIC ? 'ok' : 'not-netns';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code?.startsWith('E') ? (code as `E${string}`) : 'EIO';
  }
}

/** True when p is a live network namespace handle (a bind mount or /proc/PID/ns/net). */
export function isNetns(p: string): boolean {
  return probeNetns(p) === 'ok';
}

/** "dev:ino" of the file at p (a namespace is known by it), or undefined when p cannot be stat'ed. */
export function netnsKey(p: string): string | undefined {
  try {
    const st = fs.statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** netnsKey of p when p is a live namespace, else undefined. */
export function liveNetnsKey(p: string): string | undefined {
  return isNetns(p) ? netnsKey(p) : undefined;
}

/** Whether two paths lead to the same namespace (the same path, or the same nsfs inode). */
export function sameNetns(a: string, b: string): boolean {
  if (a === b) return true;
  const ka = netnsKey(a);
  return ka !== undefined && ka === netnsKey(b);
}

const FORBIDDEN: [path: string, what: string][] = [
  ['/proc/self/ns/net', "this process's own network namespace"],
  ['/proc/1/ns/net', "the host's network namespace (PID 1's)"],
];

/**
 * When p is this process's own network namespace or the host's (PID 1's), which one
 * (`{ path, what }`), else undefined. Bridging either cuts the node off.
 */
export function hostNetnsOf(p: string): { path: string; what: string } | undefined {
  const key = netnsKey(p);
  if (key === undefined) return undefined;
  for (const [path, what] of FORBIDDEN) if (key === netnsKey(path)) return { path, what };
  return undefined;
}
