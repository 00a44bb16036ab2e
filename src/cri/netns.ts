// Persistent network namespaces for sandboxes, made the way `ip netns add` makes them:
// an empty file, and a child in a new netns whose /proc/PID/ns/net is bind-mounted on it
// (util-linux `unshare --net=FILE`, which does the unshare in a child so this process never
// leaves its own netns). Removal is a lazy unmount plus unlink; both are idempotent.
// Like iproute2 does for /run/netns, the directory is made a shared mount point first, so
// an unmount here also reaches mount namespaces that copied it (or the netns would stay
// pinned there).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { isNetns } from '../net/netns';

const run = promisify(execFile);

export class NetnsError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'NetnsError';
  }
}

function stderrOf(e: unknown): string {
  const err = e as { stderr?: string; message?: string };
  return (err.stderr || err.message || String(e)).trim();
}

function unescapeMountinfo(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** How dir appears in /proc/self/mountinfo: not a mount point, or one (shared or not). */
export function mountState(dir: string): 'none' | 'private' | 'shared' {
  let state: 'none' | 'private' | 'shared' = 'none';
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 7 || unescapeMountinfo(f[4]!) !== dir) continue;
    const optional = f.slice(6, f.indexOf('-'));
    state = optional.some((o) => o.startsWith('shared:')) ? 'shared' : 'private'; // the last mount on top wins
  }
  return state;
}

/** Makes dir exist and be a shared mount point (bind-mounting it on itself if needed). */
export async function ensureNetnsDir(dir: string): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o755 });
  const real = await fs.promises.realpath(dir);
  try {
    if (mountState(real) === 'none') await run('mount', ['--bind', real, real]);
    if (mountState(real) !== 'shared') await run('mount', ['--make-shared', real]);
  } catch (e) {
    throw new NetnsError('EIO', `failed to make netns dir "${real}" a shared mount: ${stderrOf(e)}`);
  }
}

/** Creates a new network namespace pinned at `file` (its directory must exist). */
export async function createPersistentNetns(file: string): Promise<void> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_RDONLY, 0o444);
  } catch (e) {
    throw new NetnsError(
      (e as NodeJS.ErrnoException).code ?? 'EIO',
      `failed to create netns "${file}": ${(e as Error).message}`,
    );
  }
  await fh.close();
  try {
    await run('unshare', [`--net=${file}`, 'true']);
    if (!isNetns(file)) throw new Error('no network namespace is mounted on it afterwards');
  } catch (e) {
    await removePersistentNetns(file).catch(() => {});
    throw new NetnsError('EIO', `failed to create netns "${file}": ${stderrOf(e)}`);
  }
}

/** Unmounts and removes a namespace made by createPersistentNetns; a missing one is fine. */
export async function removePersistentNetns(file: string): Promise<void> {
  if (isNetns(file)) {
    try {
      await run('umount', ['--lazy', file]);
    } catch (e) {
      if (isNetns(file)) throw new NetnsError('EBUSY', `failed to unmount netns "${file}": ${stderrOf(e)}`);
    }
  }
  try {
    await fs.promises.unlink(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new NetnsError(
        (e as NodeJS.ErrnoException).code ?? 'EIO',
        `failed to remove netns "${file}": ${(e as Error).message}`,
      );
    }
  }
}
