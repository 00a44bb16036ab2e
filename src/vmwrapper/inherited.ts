// The descriptors vmwrapper inherited from whoever executed it (libvirt passes the QMP
// monitor socket, a pidfile lock and the like at varying numbers). Node marks fds 0..15
// (and any run of open fds after them) close-on-exec at startup
// (uv_disable_stdio_inheritance), so without help they would silently close at our
// execve. They must be named in execve's keepFds.
//
// Exact source: TAPWIRE_INHERITED_FDS, the comma list deploy/libvirt/vmwrapper (the shell
// shim) records before it execs node. Fallback when node was executed directly: every
// fd >= 3 open now except Node's own (epoll, eventfd, io_uring, signalfd, timerfd,
// inotify, and pipes held at both ends, which are libuv's self-pipes).
import * as fs from 'node:fs';

export const INHERITED_VAR = 'TAPWIRE_INHERITED_FDS';

const NODE_OWN = /^anon_inode:\[?(eventpoll|eventfd|io_uring|signalfd|timerfd|inotify)\]?$/;

function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** Parses the shim's list; entries that are not fds >= 3 still open are dropped. */
export function parseInherited(list: string): number[] {
  return list
    .split(',')
    .filter((s) => /^\d+$/.test(s))
    .map(Number)
    .filter((fd) => fd > 2 && isOpen(fd));
}

/** The guess for a direct start: fd -> link target of /proc/self/fd, minus Node's own. */
export function guessInherited(links: Map<number, string>): number[] {
  const count = new Map<string, number>();
  for (const t of links.values()) count.set(t, (count.get(t) ?? 0) + 1);
  const out: number[] = [];
  for (const [fd, target] of links) {
    if (fd <= 2 || NODE_OWN.test(target)) continue;
    if (target.startsWith('pipe:') && (count.get(target) ?? 0) > 1) continue;
    if (target === '/proc/self/fd' || /^\/proc\/\d+\/fd$/.test(target)) continue; // our own readdir
    out.push(fd);
  }
  return out.sort((a, b) => a - b);
}

function readLinks(): Map<number, string> {
  const links = new Map<number, string>();
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      links.set(Number(name), fs.readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      /* closed meanwhile (readdir's own fd) */
    }
  }
  return links;
}

/**
 * Those of fds still open. The guess can take in a transient fd of Node's own (open on a
 * pool thread while /proc/self/fd was read, closed since): execve would fail on it (EBADF
 * from clearing its close-on-exec), so the list is checked again just before.
 */
export function stillOpen(fds: number[]): number[] {
  return fds.filter(isOpen);
}

/** Fds >= 3 to keep across execve because they were inherited. */
export function inheritedFds(env: NodeJS.ProcessEnv): number[] {
  const list = env[INHERITED_VAR];
  if (list !== undefined) return parseInherited(list);
  return guessInherited(readLinks());
}
