// A directory of JSON records, one file `<id>.json` per record: the directory made 0700,
// each record written atomically (atomic-file.ts: a reader or a crash sees the old file
// or the new one; overwriteHead's in-place head is atomic against the writer's death
// only, an outside reader may see it half copied), and every record read back at once,
// a file that is not a record
// reported with its path and left in place. What a record is (its id, its check on
// load, how it is written out) is the owner's: tapmanager's sandbox records, tapwire-cri's
// sandbox records and the CRI proxy's VM pod records each wrap one of these.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileIdentity, overwriteHead, writeFileAtomic, type FileIdentity } from './atomic-file';

export interface JsonDirStoreOptions<T> {
  /** the record's id, its file's name without `.json` */
  idOf: (rec: T) => string;
  /** refuses an id that must not name a file (throws); every id is checked before use */
  checkId?: (id: string) => void;
  /** the record a parsed file holds, or a throw saying why it is none */
  parse: (value: unknown) => T;
  /** the file's text (default: JSON, one space of indent) */
  format?: (rec: T) => string;
  /** fsync file and directory on every write (default false: atomic against a process crash only) */
  durable?: boolean;
  /** file mode (default 0600: records may hold secrets) */
  mode?: number;
}

/** A file of the directory that could not be read as a record. */
export interface JsonDirStoreError {
  file: string;
  error: Error;
}

const TEMP_RE = /^\..+\.(\d+)\.[0-9a-z]*\.tmp$/;

export class JsonDirStore<T> {
  private made = false;

  constructor(
    readonly dir: string,
    private readonly o: JsonDirStoreOptions<T>,
  ) {}

  /** Makes the directory (0700) if it is not there. */
  async init(): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.made = true;
  }

  file(id: string): string {
    this.o.checkId?.(id);
    return path.join(this.dir, `${id}.json`);
  }

  /** Writes the record atomically, making the directory first when it is not there. */
  save(rec: T): Promise<void> {
    return this.saveText(this.o.idOf(rec), this.o.format ? this.o.format(rec) : JSON.stringify(rec, null, 1));
  }

  /** Writes `text` as the record `id` atomically (the owner formatted it), as save does. */
  async saveText(id: string, text: string): Promise<void> {
    const file = this.file(id);
    const write = () =>
      writeFileAtomic(file, text, { durable: this.o.durable ?? false, ...(this.o.mode ? { mode: this.o.mode } : {}) });
    if (!this.made) await this.init();
    try {
      await write();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await this.init(); // removed meanwhile
      await write();
    }
  }

  /** The identity of the record `id`'s file now (atomic-file.ts), undefined when there is none. */
  identity(id: string): FileIdentity | undefined {
    return fileIdentity(this.file(id));
  }

  /**
   * Rewrites the first bytes of the record `id` in place (atomic-file.ts overwriteHead), if
   * its file is still the version `expect` names: for an owner that wrote the file with
   * saveText and knows only its head changed. Undefined, writing nothing, otherwise.
   * Never durable.
   */
  overwriteHead(id: string, head: Buffer, expect: FileIdentity): FileIdentity | undefined {
    return overwriteHead(this.file(id), head, expect);
  }

  async remove(id: string): Promise<void> {
    await fs.promises.rm(this.file(id), { force: true });
  }

  /**
   * Every record in the directory (none when there is no directory), and every `.json`
   * file that is not one, with why. Temp files of writes that a dead process left are
   * removed; other files are not looked at.
   */
  async loadAll(): Promise<{ records: T[]; errors: JsonDirStoreError[] }> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], errors: [] };
      throw e;
    }
    const records: T[] = [];
    const errors: JsonDirStoreError[] = [];
    for (const name of names.sort()) {
      const file = path.join(this.dir, name);
      const temp = TEMP_RE.exec(name);
      if (temp) {
        if (Number(temp[1]) !== process.pid) await fs.promises.rm(file, { force: true }); // an interrupted write
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        const rec = this.o.parse(JSON.parse(await fs.promises.readFile(file, 'utf8')));
        const id = this.o.idOf(rec);
        if (`${id}.json` !== name) throw new Error(`its id is ${JSON.stringify(id)}, not its file's name`);
        this.o.checkId?.(id);
        records.push(rec);
      } catch (e) {
        errors.push({ file, error: e instanceof Error ? e : new Error(String(e)) });
      }
    }
    return { records, errors };
  }
}
