// Sandbox network namespaces: a shared bind-mounted netns dir (like iproute2's /run/netns),
// a pinned netns that is really a new namespace, idempotent removal, clear errors.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { isNetns } from '../../src/net/netns';
import { createPersistentNetns, ensureNetnsDir, mountState, removePersistentNetns } from '../../src/cri/netns';
import * as native from '../../src/native';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const missing = requireTools('unshare', 'mount', 'umount');

/** Outside CI a missing tool skips with the reason; in CI it fails. */
function skipOrFail(ctx: { skip: (note: string) => void }, why: string): void {
  if (inCI) throw new Error(why);
  ctx.skip(why);
}

describePrivileged('sandbox netns', () => {
  let tmp: string;
  let dir: string;

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-crins-'));
    dir = path.join(tmp, 'netns');
  });
  afterEach(() => {
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      try {
        execFileSync('umount', ['--lazy', path.join(dir, f)], { stdio: 'ignore' });
      } catch {
        /* not mounted */
      }
    }
    while (mountState(dir) !== 'none') execFileSync('umount', ['--lazy', dir]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('pins a fresh netns in a shared netns dir and removes it idempotently', async (ctx) => {
    if (missing) return skipOrFail(ctx, missing);
    expect(mountState(dir)).toBe('none');
    await ensureNetnsDir(dir);
    expect(mountState(dir)).toBe('shared');
    await ensureNetnsDir(dir); // no second bind mount on top
    expect(
      fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.split(' ')[4] === dir),
    ).toHaveLength(1);

    const file = path.join(dir, 'sb1');
    await createPersistentNetns(file);
    expect(isNetns(file)).toBe(true);
    const ino = fs.statSync(file).ino;
    expect(ino).not.toBe(native.netnsInode());
    expect(native.withNetns(file, () => native.netnsInode())).toBe(ino);
    expect(execFileSync('nsenter', [`--net=${file}`, 'ip', '-o', 'link', 'show'], { encoding: 'utf8' })).toMatch(
      /^1: lo: .*state DOWN/,
    );
    await expect(createPersistentNetns(file)).rejects.toMatchObject({
      code: 'EEXIST',
      message: expect.stringContaining(`failed to create netns "${file}"`),
    });
    expect(isNetns(file)).toBe(true); // the failed second create did not touch it

    await removePersistentNetns(file);
    expect(fs.existsSync(file)).toBe(false);
    await removePersistentNetns(file);
  });

  it('removes a leftover plain file (a crash between create and mount)', async (ctx) => {
    if (missing) return skipOrFail(ctx, missing);
    await ensureNetnsDir(dir);
    const file = path.join(dir, 'half');
    fs.writeFileSync(file, '');
    expect(isNetns(file)).toBe(false);
    await removePersistentNetns(file);
    expect(fs.existsSync(file)).toBe(false);
  });
});
