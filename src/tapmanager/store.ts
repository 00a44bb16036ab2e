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
//
// A record's file begins with its state and updatedAt, in a head of fixed length
// (`{"state":"ready"       ,"updatedAt":"2026-12-02T13:42:23.123Z"`, then the rest of
// the record). A save that changes nothing but those two (a setup's ready, a teardown's
// tearing-down: the record is otherwise as its write-ahead save wrote it) rewrites only
// the head, in place (overwriteHead: one write of 62 bytes at offset 0, atomic against
// the daemon's death as the rename is; never with --fsync-records, where a torn sector
// after a power loss would leave the record unreadable, nor when the file is no longer
// the version this store wrote: another writer, a truncation, a restored copy); any other
// change, or a file this store did not write, is written whole. The file always says by
// itself what the sandbox is: a copy of it is the record.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { FileIdentity } from '../util/atomic-file';
import { JsonDirStore } from '../util/json-dir-store';
import { KeyedLock } from '../util/keyed-lock';
import type { Logger } from '../util/log';
import { RECORD_VERSION, SandboxRecord, SandboxState } from './record';

/** The head's state field is as wide as the longest state, `"tearing-down"`. */
const STATE_WIDTH = JSON.stringify('tearing-down' satisfies SandboxState).length;

/** The head: `{"state":<state, padded>,"updatedAt":"<ISO time>"`; its length is fixed while updatedAt's is (24). */
function headOf(rec: SandboxRecord): string {
  return `{"state":${JSON.stringify(rec.state).padEnd(STATE_WIDTH)},"updatedAt":${JSON.stringify(rec.updatedAt)}`;
}

/** Everything but the head, as the end of a JSON object (`,\n "version": 1, ... }`). */
function bodyOf(rec: SandboxRecord): string {
  const { state: _state, updatedAt: _updatedAt, ...rest } = rec;
  return `,${JSON.stringify(rest, null, 1).slice(1)}`;
}

/** What a store wrote last for one record: the length of its head and a digest of the rest. */
interface Written {
  /** the head's length in bytes */
  head: number;
  body: string;
  /** the file as that write (or a head-only one since) left it */
  file: FileIdentity;
}

function digest(body: string): string {
  return createHash('sha256').update(body).digest('base64');
}

export class RecordStore {
  readonly dir: string;

  private readonly files: JsonDirStore<SandboxRecord>;
  /** per record this store wrote whole: what it wrote (for a save that changes only the head) */
  private readonly written = new Map<string, Written>();
  /** per record: its writes, one at a time in the order asked */
  private readonly writes = new KeyedLock();

  private readonly durable: boolean;

  constructor(stateDir: string, opts: { fsync?: boolean } = {}) {
    this.dir = path.join(stateDir, 'sandboxes');
    this.durable = opts.fsync ?? false;
    this.files = new JsonDirStore(this.dir, {
      idOf: (rec) => rec.sandboxId,
      parse: (value) => {
        const rec = value as SandboxRecord;
        if (rec?.version !== RECORD_VERSION)
          throw new Error(`record version ${String(rec?.version)} is not ${RECORD_VERSION}`);
        return rec;
      },
      format: (rec) => headOf(rec) + bodyOf(rec),
      durable: opts.fsync ?? false,
    });
  }

  init(): Promise<void> {
    return this.files.init();
  }

  /**
   * Writes the record: only its head, in place, when nothing else changed since this
   * store last wrote it whole and the file is still the one it wrote (no one else wrote,
   * truncated or replaced it: same inode, size and mtime); else the whole file,
   * atomically. With fsync always the whole file (a head written in place is not durable).
   */
  save(rec: SandboxRecord): Promise<void> {
    const id = rec.sandboxId;
    return this.writes.run(id, async () => {
      rec.updatedAt = new Date().toISOString();
      const head = headOf(rec);
      const body = bodyOf(rec);
      const sum = digest(body);
      const headBytes = Buffer.from(head);
      const last = this.written.get(id);
      this.written.delete(id); // until this write is known to have landed
      let file =
        !this.durable && last?.head === headBytes.length && last.body === sum
          ? this.files.overwriteHead(id, headBytes, last.file)
          : undefined;
      if (file === undefined) {
        await this.files.saveText(id, head + body);
        file = this.files.identity(id);
      }
      if (file !== undefined) this.written.set(id, { head: headBytes.length, body: sum, file });
    });
  }

  remove(id: string): Promise<void> {
    return this.writes.run(id, () => {
      this.written.delete(id);
      return this.files.remove(id);
    });
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
