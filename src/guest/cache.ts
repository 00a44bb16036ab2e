// tapwire's guest cache: /var/cache/tapwire/guest (TAPWIRE_CACHE/guest when set), made
// on first use. Each build lives in a directory named for the hash of its inputs and
// appears whole (built in a temp dir, then renamed), so a reader never sees half a build;
// a lock keeps two builders from doing the same work at once.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GuestError } from './errors';

/**
 * mkdir -p whose new directories are 0755 whatever the umask: an unprivileged emulator
 * (vmwrapper as nobody, libvirt's qemu user) must reach the image.
 */
export function mkdirPublic(dir: string): void {
  const first = fs.mkdirSync(dir, { recursive: true });
  if (first === undefined) return;
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    fs.chmodSync(d, 0o755);
    if (d === path.resolve(first)) break;
  }
}

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.TAPWIRE_CACHE || '/var/cache/tapwire', 'guest');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs fn holding an exclusive flock(2) on `<dir>/.lock`, waiting up to timeoutMs for it.
 * The lock is held by a flock(1) child whose stdin is a pipe from us: when we finish, or
 * die in any way, the pipe closes and the kernel drops the lock. No stale locks.
 */
export async function withLock<T>(dir: string, fn: () => Promise<T>, timeoutMs = 20 * 60_000): Promise<T> {
  mkdirPublic(dir);
  const lock = path.join(dir, '.lock');
  const holder = spawn(
    'flock',
    ['-x', '-w', String(Math.ceil(timeoutMs / 1000)), lock, 'sh', '-c', 'echo locked; exec cat'],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  holder.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => holder.once('close', (code) => r(code)));
  const got = await new Promise<boolean>((resolve) => {
    holder.stdout.once('data', () => resolve(true));
    holder.once('error', (e) => {
      stderr += e.message;
      resolve(false);
    });
    void exited.then(() => resolve(false));
  });
  if (!got) {
    throw new GuestError(
      'EBUILD',
      `failed to lock "${lock}": ${stderr.trim() || `not free within ${timeoutMs / 1000} s`}`,
    );
  }
  try {
    return await fn();
  } finally {
    holder.stdin.end();
    await exited;
  }
}

/** Removes temp dirs (".build-<pid>-*", "debs/.dl-<pid>-*") whose process is gone. */
export function sweepTemp(dir: string): void {
  for (const d of [dir, path.join(dir, 'debs')]) {
    for (const name of fs.existsSync(d) ? fs.readdirSync(d) : []) {
      const m = /^\.(?:build|dl)-(\d+)-/.exec(name);
      if (m && !alive(Number(m[1]))) fs.rmSync(path.join(d, name), { recursive: true, force: true });
    }
  }
}

/** Removes downloaded packages other than `keep` (file names). */
export function pruneDebs(dir: string, keep: string[]): void {
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (name.endsWith('.deb') && !keep.includes(name)) fs.rmSync(path.join(dir, name), { force: true });
  }
}

/** Keeps the `keep` newest builds (hex-named dirs) besides `current`; removes older ones. */
export function pruneBuilds(dir: string, current: string, keep = 1): void {
  const builds = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[0-9a-f]{16}$/.test(e.name) && e.name !== current)
    .map((e) => ({ name: e.name, mtime: fs.statSync(path.join(dir, e.name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const b of builds.slice(keep)) fs.rmSync(path.join(dir, b.name), { recursive: true, force: true });
}
