// A network namespace held open for the length of one operation, and known by its cookie.
//
// A netnsPath is only a name: what it leads to can change between two opens of it (a
// symlink swapped, a bind mount replaced, a /proc/PID/ns/net whose PID was reused, a
// pinned name deleted and made again for another pod). So an operation opens the path
// once, and everything it does goes through /proc/self/fd/N, which leads to that same
// namespace whatever happens to the path meanwhile. And a sandbox's record keeps the
// namespace's SO_NETNS_COOKIE, which no other namespace has in the same boot (nsfs inode
// numbers are reused): a later teardown, fetch or revoke that finds another namespace at
// the path leaves it alone.
import * as fs from 'node:fs';
import { netnsCookie, withNetns } from '../native';

export interface PinnedNetns {
  /** /proc/self/fd/N: the namespace that was at the path when it was pinned */
  readonly path: string;
  /** its SO_NETNS_COOKIE, as a decimal string */
  readonly cookie: string;
  close(): void;
}

/** Why a path cannot be pinned. */
export class NetnsPinError extends Error {
  constructor(
    readonly netnsPath: string,
    readonly reason: string,
  ) {
    super(`${netnsPath} ${reason}`);
    this.name = 'NetnsPinError';
  }
}

/**
 * Opens the network namespace at `netnsPath`; NetnsPinError when there is none there.
 * Its cookie is read in one window in it (native withNetns: the nsfs check, a setns
 * pair), and `inside`, when given, runs in that same window with the pinned path: a setup makes its route
 * socket there (NetlinkHandle.inWindow) instead of entering again. What `inside`
 * throws is thrown as it is, the namespace closed.
 */
export function pinNetns(netnsPath: string): PinnedNetns;
export function pinNetns<T>(netnsPath: string, inside: (path: string) => T): PinnedNetns & { readonly value: T };
export function pinNetns<T>(netnsPath: string, inside?: (path: string) => T): PinnedNetns & { readonly value?: T } {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO (or a device) named as netnsPath must not block the daemon in open()
    fd = fs.openSync(netnsPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new NetnsPinError(netnsPath, `cannot be opened (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const path = `/proc/self/fd/${fd}`;
  try {
    let entered = false;
    let cookie = '';
    let value: T | undefined;
    try {
      value = withNetns(fd, () => {
        entered = true;
        cookie = netnsCookie().toString();
        return inside?.(path);
      });
    } catch (e) {
      if (entered) throw e;
      if ((e as { notNetns?: boolean }).notNetns)
        throw new NetnsPinError(netnsPath, 'is not a network namespace (not on nsfs)');
      throw new NetnsPinError(netnsPath, `is not a network namespace that can be entered (${(e as Error).message})`);
    }
    let open = true;
    return {
      path,
      cookie,
      ...(inside ? { value } : {}),
      close: () => {
        if (open) fs.closeSync(fd);
        open = false;
      },
    };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/**
 * The namespace a record describes, pinned; 'gone' when the path leads to no namespace
 * now, 'replaced' when (`cookie` given) it leads to another one than the record's.
 */
export function pinRecorded(netnsPath: string, cookie: string | undefined): PinnedNetns | 'gone' | 'replaced' {
  let ns: PinnedNetns;
  try {
    ns = pinNetns(netnsPath);
  } catch {
    return 'gone';
  }
  if (cookie !== undefined && ns.cookie !== cookie) {
    ns.close();
    return 'replaced';
  }
  return ns;
}

/** `text` with the pinned path put back as the path the caller gave. */
export function unpinned(text: string, ns: { path: string }, netnsPath: string): string {
  return text.replace(new RegExp(`${ns.path.replace(/[/]/g, '\\/')}(?!\\d)`, 'g'), () => netnsPath);
}
