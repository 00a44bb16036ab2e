// Everything a bench run creates (network namespaces, temp dirs, child processes) is named
// twb-<pid base36>-<random>-<label> and registered here, so it is removed when the run ends,
// fails, or is interrupted (SIGINT/SIGTERM), and a later run sweeps what a killed one left
// (its pid is gone). Nothing here touches names without the prefix.
import { ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { removeNetns, TestNetns } from '../test/helpers/netns';

export const BENCH_PREFIX = 'twb-';
const OWNER = process.pid.toString(36);

let seq = 0;

/**
 * A unique name owned by this process: twb-<pid>-<sequence><4 hex>-<label>. The sequence
 * makes it unique in this run (3 random bytes alone collided among the 2000 namespaces of
 * the scale suite), the random part keeps it clear of a dead run's leftovers under a reused pid.
 */
export function benchName(label: string): string {
  return `${BENCH_PREFIX}${OWNER}-${(seq++).toString(36)}${randomBytes(2).toString('hex')}-${label}`;
}

function ownerAlive(name: string): boolean {
  const m = /^twb-([0-9a-z]+)-/.exec(name);
  if (!m) return true; // not ours to judge
  try {
    process.kill(parseInt(m[1]!, 36), 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const netns = new Set<string>();
const dirs = new Set<string>();
const procs = new Set<ChildProcess>();
const hooks = new Set<() => void>();

/** A fresh netns with lo up, removed (with every process in it) at the end of the run. */
export function benchNetns(label: string): TestNetns {
  const name = benchName(label);
  execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
  netns.add(name);
  const ns = new TestNetns(name);
  ns.ip('link', 'set', 'lo', 'up');
  return ns;
}

/** Registers a netns created by someone else (e.g. tapwire-cri) under a bench name. */
export function adoptNetns(name: string): void {
  netns.add(name);
}

export function dropNetns(...list: (TestNetns | string)[]): void {
  for (const ns of list) {
    const name = typeof ns === 'string' ? ns : ns.name;
    removeNetns(name);
    netns.delete(name);
  }
}

/** A temp dir under /tmp (or `base`), removed at the end of the run. */
export function benchDir(label: string, base = os.tmpdir()): string {
  const dir = path.join(base, benchName(label));
  fs.mkdirSync(dir, { recursive: true });
  dirs.add(dir);
  return dir;
}

export function dropDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** A child that is SIGKILLed at the end of the run if it is still there. */
export function track<T extends ChildProcess>(p: T): T {
  procs.add(p);
  p.once('exit', () => procs.delete(p));
  return p;
}

/** A synchronous undo run by cleanupAll (e.g. closing sockets); returns its remover. */
export function onCleanup(fn: () => void): () => void {
  hooks.add(fn);
  return () => hooks.delete(fn);
}

/** Removes everything registered, synchronously (safe in 'exit' and signal handlers). */
export function cleanupAll(): void {
  for (const h of [...hooks]) {
    hooks.delete(h);
    try {
      h();
    } catch {
      /* best effort */
    }
  }
  for (const p of [...procs]) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
    procs.delete(p);
  }
  for (const n of [...netns]) dropNetns(n);
  for (const d of [...dirs]) dropDir(d);
}

/** Removes netns and /tmp, /run dirs named twb-<pid>- whose pid is gone (a killed run's leftovers). */
export function sweepStale(): string[] {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '');
  } catch {
    /* no ip netns */
  }
  for (const n of names) {
    if (n.startsWith(BENCH_PREFIX) && !ownerAlive(n)) {
      removeNetns(n);
      removed.push(n);
    }
  }
  for (const base of [os.tmpdir(), '/run']) {
    for (const f of fs.readdirSync(base)) {
      if (f.startsWith(BENCH_PREFIX) && !ownerAlive(f)) {
        fs.rmSync(path.join(base, f), { recursive: true, force: true });
        removed.push(path.join(base, f));
      }
    }
  }
  return removed;
}

/** How many kernel workers are running a work item of the netns workqueue (cleanup_net) now. */
function netnsCleanupWorkers(): number {
  let n = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      // a kworker's comm carries "+<workqueue>" while it runs one of that queue's items
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').includes('+netns')) n++;
    } catch {
      // gone
    }
  }
  return n;
}

const load1 = (): number => Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

/**
 * Waits until the machine is quiet, at most `maxMs`: the kernel has finished tearing down
 * deleted namespaces (no netns worker seen for `quietMs`; for 1000 sandboxes that takes ~10 s
 * and little CPU) and the 1-minute load is below 1. The load here mostly counts the previous
 * run's own bursts of runnable tasks (1000 dnsmasq processes woken at once), so it is a slow
 * but safe signal; a run started at load 11 had every server's CPU per exchange 40-70% above
 * its usual in its first blocks. Returns the ms waited and the load when it stopped waiting.
 */
export async function waitQuiet(quietMs = 3000, maxMs = 600_000): Promise<{ waitedMs: number; load1: number }> {
  const t0 = Date.now();
  let quietSince = t0;
  while ((Date.now() - quietSince < quietMs || load1() >= 1) && Date.now() - t0 < maxMs) {
    if (netnsCleanupWorkers() > 0) quietSince = Date.now();
    await new Promise((r) => setTimeout(r, 100));
  }
  return { waitedMs: Math.max(0, Date.now() - t0 - quietMs), load1: load1() };
}

/** Lets the event loop run (and with it a pending SIGINT handler) inside long synchronous setup loops. */
export function breathe(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

let installed = false;
/** Cleans up on exit and on SIGINT/SIGTERM/SIGHUP (then exits 130/143/129). */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', cleanupAll);
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, removing what this run created\n`);
      cleanupAll();
      process.exit(code);
    });
  }
}
