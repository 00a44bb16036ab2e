// One JSON file per sandbox in the state dir, written atomically (temp file, rename).
// Files are 0600: they hold the sandbox's vmwrapper token.
//
// No fsync by default: a record describes links, a fence and a DHCP server inside a
// network namespace, kernel objects that do not outlive the boot. What must survive is
// the daemon's own death (kill -9, OOM, an upgrade), and the page cache outlives that;
// after a machine crash every record's netns is gone and recovery drops the record
// (a torn one is logged and left). `fsync: true` (--fsync-records) makes each write
// durable anyway, at ~1.5 ms per write.
//
// The writes of one record (saves and its removal) land in the order they were asked for,
// each writing the record as it is when its turn comes (a removal, and a durable write,
// take several turns of the event loop): a save asked for outside the sandbox's
// operations (a NIC's process restarted on its own) neither lands after a removal asked
// for later nor puts back an older state.
import * as path from 'node:path';
import { JsonDirStore } from '../util/json-dir-store';
import { KeyedLock } from '../util/keyed-lock';
import type { Logger } from '../util/log';
import { RECORD_VERSION, SandboxRecord } from './record';

export class RecordStore {
  readonly dir: string;

  private readonly files: JsonDirStore<SandboxRecord>;

  /** per record: its writes, one at a time in the order asked */
  private readonly writes = new KeyedLock();

  constructor(stateDir: string, opts: { fsync?: boolean } = {}) {
    this.dir = path.join(stateDir, 'sandboxes');
    this.files = new JsonDirStore(this.dir, {
      idOf: (rec) => rec.sandboxId,
      parse: (value) => {
        const rec = value as SandboxRecord;
        if (rec?.version !== RECORD_VERSION)
          throw new Error(`record version ${String(rec?.version)} is not ${RECORD_VERSION}`);
        return rec;
      },
      durable: opts.fsync ?? false,
    });
  }

  init(): Promise<void> {
    return this.files.init();
  }

  save(rec: SandboxRecord): Promise<void> {
    return this.writes.run(rec.sandboxId, async () => {
      rec.updatedAt = new Date().toISOString();
      await this.files.save(rec);
    });
  }

  remove(id: string): Promise<void> {
    return this.writes.run(id, () => this.files.remove(id));
  }

  /**
   * Every readable record; unreadable files (and an unreadable dir) are reported (logged,
   * and told to onError) and left in place.
   */
  async loadAll(log: Logger, onError?: (e: unknown) => void): Promise<SandboxRecord[]> {
    try {
      const { records, errors } = await this.files.loadAll();
      for (const e of errors) {
        log.error('cannot read sandbox record; left in place', { file: path.basename(e.file), error: e.error.message });
        onError?.(e.error);
      }
      return records;
    } catch (e) {
      log.error('cannot read the sandbox records', { dir: this.dir, error: (e as Error).message });
      onError?.(e);
      return [];
    }
  }
}
