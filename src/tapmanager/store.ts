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
// A setup writes its record once, as the write-ahead ('setting-up'); that it became
// ready is a marker `ready/<id>` beside the records dir, not a second write of the
// record. The marker is a hard link to the record file: a directory entry and a link
// count, ~7 us, where rewriting the record costs a new inode (~0.1-0.2 ms on ext4) and,
// renamed over the old one, the start of its writeback (auto_da_alloc): the ready save
// was the dearer of a setup's two saves (0.24 vs 0.12 ms p50). An empty file stands in
// where the state dir cannot hold hard links (EXDEV, EPERM, ENOTSUP). The marker only turns a 'setting-up'
// record into a ready one (what it holds is not read): a later state written into the
// record (a teardown's 'tearing-down') wins over it. The write-ahead removes a marker
// left by an earlier sandbox of the same id before it writes; a marker without a record
// (a crash between removing the two) is removed when the records are read at start.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonDirStore } from '../util/json-dir-store';
import type { Logger } from '../util/log';
import { RECORD_VERSION, SandboxRecord } from './record';

export class RecordStore {
  readonly dir: string;
  /** the ready markers, one empty file per ready sandbox, named by its id */
  readonly readyDir: string;

  private readonly files: JsonDirStore<SandboxRecord>;

  constructor(
    stateDir: string,
    private readonly opts: { fsync?: boolean } = {},
  ) {
    this.dir = path.join(stateDir, 'sandboxes');
    this.readyDir = path.join(stateDir, 'ready');
    this.files = new JsonDirStore(this.dir, {
      idOf: (rec) => rec.sandboxId,
      parse: (value) => {
        const rec = value as SandboxRecord;
        if (rec?.version !== RECORD_VERSION)
          throw new Error(`record version ${String(rec?.version)} is not ${RECORD_VERSION}`);
        return rec;
      },
      durable: opts.fsync ?? false,
      spareDir: path.join(stateDir, 'spare'), // a setup's write-ahead allocates no inode (json-dir-store.ts)
    });
  }

  async init(): Promise<void> {
    await this.files.init();
    await fs.promises.mkdir(this.readyDir, { recursive: true, mode: 0o700 });
  }

  async save(rec: SandboxRecord): Promise<void> {
    rec.updatedAt = new Date().toISOString();
    // a write-ahead is never ready by an earlier sandbox's marker
    if (rec.state === 'setting-up') fs.rmSync(this.marker(rec.sandboxId), { force: true });
    await this.files.save(rec);
  }

  /**
   * The sandbox is ready: its marker, made synchronously (one link(2)). The record in
   * memory says so too; the one on disk keeps 'setting-up' and reads back as ready while
   * the marker is there.
   */
  markReady(rec: SandboxRecord): void {
    const file = this.marker(rec.sandboxId);
    const link = () => fs.linkSync(this.files.file(rec.sandboxId), file);
    try {
      link();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT')
        fs.mkdirSync(this.readyDir, { recursive: true, mode: 0o700 }); // not made, or removed
      else if (code === 'EEXIST') fs.rmSync(file, { force: true });
      if (code === 'ENOENT' || code === 'EEXIST') link();
      else if (code === 'EXDEV' || code === 'EPERM' || code === 'ENOTSUP') fs.writeFileSync(file, '', { mode: 0o600 });
      else throw e;
    }
    if (this.opts.fsync) syncDir(this.readyDir);
    rec.state = 'ready';
  }

  async remove(id: string): Promise<void> {
    await this.files.remove(id);
    await fs.promises.rm(this.marker(id), { force: true });
  }

  /**
   * Every readable record; unreadable files (and an unreadable dir) are reported (logged,
   * and told to onError) and left in place.
   */
  async loadAll(log: Logger, onError?: (e: unknown) => void): Promise<SandboxRecord[]> {
    let records: SandboxRecord[];
    try {
      const loaded = await this.files.loadAll();
      for (const e of loaded.errors) {
        log.error('cannot read sandbox record; left in place', { file: path.basename(e.file), error: e.error.message });
        onError?.(e.error);
      }
      records = loaded.records;
    } catch (e) {
      log.error('cannot read the sandbox records', { dir: this.dir, error: (e as Error).message });
      onError?.(e);
      return [];
    }
    let ready: Set<string>;
    try {
      ready = await this.markers();
    } catch (e) {
      // nothing is told ready or not: no record is used rather than ready ones rolled back
      log.error('cannot read the ready markers', { dir: this.readyDir, error: (e as Error).message });
      onError?.(e);
      return [];
    }
    for (const rec of records) {
      if (ready.delete(rec.sandboxId) && rec.state === 'setting-up') rec.state = 'ready';
    }
    // markers whose record is gone (a crash between the two removals; an unreadable
    // record keeps its marker)
    for (const id of ready) {
      if (!fs.existsSync(this.files.file(id))) await fs.promises.rm(this.marker(id), { force: true });
    }
    return records;
  }

  private marker(id: string): string {
    return path.join(this.readyDir, path.basename(this.files.file(id), '.json'));
  }

  private async markers(): Promise<Set<string>> {
    try {
      return new Set(await fs.promises.readdir(this.readyDir));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw e;
    }
  }
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
