// One JSON file per sandbox in the state dir, written atomically (temp file, rename).
// Files are 0600: they hold the sandbox's vmwrapper token.
//
// No fsync by default: a record describes links, a fence and a DHCP server inside a
// network namespace, kernel objects that do not outlive the boot. What must survive is
// the daemon's own death (kill -9, OOM, an upgrade), and the page cache outlives that;
// after a machine crash every record's netns is gone and recovery drops the record
// (a torn one is logged and left). `fsync: true` (--fsync-records) makes each write
// durable anyway, at ~1.5 ms per write.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomic-file';
import type { Logger } from '../util/log';
import { RECORD_VERSION, SandboxRecord } from './record';

export class RecordStore {
  readonly dir: string;

  private readonly fsync: boolean;

  constructor(stateDir: string, opts: { fsync?: boolean } = {}) {
    this.dir = path.join(stateDir, 'sandboxes');
    this.fsync = opts.fsync ?? false;
  }

  async init(): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  private file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  async save(rec: SandboxRecord): Promise<void> {
    rec.updatedAt = new Date().toISOString();
    await writeFileAtomic(this.file(rec.sandboxId), JSON.stringify(rec, null, 1), { durable: this.fsync });
  }

  async remove(id: string): Promise<void> {
    await fs.promises.rm(this.file(id), { force: true });
  }

  /** Every readable record; unreadable files are reported and left in place. */
  async loadAll(log: Logger): Promise<SandboxRecord[]> {
    const out: SandboxRecord[] = [];
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch {
      return out;
    }
    for (const name of names) {
      if (name.startsWith('.') && name.endsWith('.tmp')) {
        await fs.promises.rm(path.join(this.dir, name), { force: true }); // an interrupted write
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const rec = JSON.parse(await fs.promises.readFile(path.join(this.dir, name), 'utf8')) as SandboxRecord;
        if (rec.version !== RECORD_VERSION)
          throw new Error(`record version ${String(rec.version)} is not ${RECORD_VERSION}`);
        out.push(rec);
      } catch (e) {
        log.error('cannot read sandbox record; left in place', { file: name, error: (e as Error).message });
      }
    }
    return out;
  }
}
