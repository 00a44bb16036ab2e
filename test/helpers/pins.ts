// The netns pin directory of a test's tapwire-cri (--netns-dir): every pin in it unmounted,
// then the directory's own mounts (the daemon makes it a mount point of its own) until
// none is left. Lazy unmounts, quiet when something is not mounted.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mountState } from '../../src/cri/netns';

function umount(p: string): void {
  try {
    execFileSync('umount', ['--lazy', p], { stdio: 'ignore' });
  } catch {
    /* not mounted */
  }
}

export function unmountPins(dir: string): void {
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) umount(path.join(dir, f));
  while (fs.existsSync(dir) && mountState(dir) !== 'none') umount(dir);
}
