// A VM pod's network namespace pinned where tapwire owns it: the backend made the netns
// (and names it by a path in its own mount namespace, which tapmanager may not see); the
// proxy bind-mounts /proc/PID/ns/net of the sandbox's process on DIR/<sandbox id>, in a
// shared mount-point directory as for standalone sandboxes (../netns.ts), and hands
// tapmanager that path. Unpinning is removePersistentNetns: idempotent.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bindMount } from '../../native';
import { NetnsError, ensureNetnsDir, removePersistentNetns } from '../netns';

export class NetnsPins {
  private ready: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  pathOf(sandboxId: string): string {
    return path.join(this.dir, sandboxId);
  }

  /** Pins the netns of process pid as pathOf(sandboxId); returns that path. */
  async pin(sandboxId: string, pid: number): Promise<string> {
    this.ready ??= ensureNetnsDir(this.dir).catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    await this.ready;
    const file = this.pathOf(sandboxId);
    const source = `/proc/${pid}/ns/net`;
    const before = fs.statSync(source); // the process exists, and which netns it is in
    const fh = await fs.promises.open(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_RDONLY, 0o444);
    await fh.close();
    try {
      bindMount(source, file); // a syscall: mount(8) as a process cost milliseconds per pod
      const pinned = fs.statSync(file);
      if (pinned.ino !== before.ino || pinned.dev !== before.dev) {
        throw new Error(`process ${pid} changed network namespace while it was pinned`);
      }
    } catch (e) {
      await removePersistentNetns(file).catch(() => {});
      const msg = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
      throw new NetnsError('EIO', `failed to pin the netns of process ${pid} at "${file}": ${msg}`);
    }
    return file;
  }

  unpin(sandboxId: string): Promise<void> {
    return removePersistentNetns(this.pathOf(sandboxId));
  }
}
