// Atomic file replacement: write a temp file, rename it over the target. A reader, and
// a process killed at any point, sees the old or the new content, never a mix.
// `durable` (the default) also fsyncs the file before the rename and the directory
// after it, so the new content survives a crash of the whole machine too.
// overwriteHead rewrites a file's first bytes in place instead, for a caller that knows
// they are all that changed (a record's state): atomic against a process crash, not
// durable, see there.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface AtomicWriteOptions {
  mode?: number;
  /** fsync file and directory (default true); false: atomic against a process crash only */
  durable?: boolean;
}

function tempName(file: string): string {
  const base = `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  return path.join(path.dirname(file), base);
}

export async function writeFileAtomic(
  file: string,
  data: string | Buffer,
  { mode = 0o600, durable = true }: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = tempName(file);
  if (!durable) {
    // synchronous: two syscalls of a few tens of µs each cost less than the four
    // threadpool round trips of their async form (0.18 vs 0.43 ms p50 here)
    try {
      fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    return;
  }
  const fh = await fs.promises.open(tmp, 'wx', mode);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    // a full disk or an I/O error leaves no temp file behind (each failed save would add one)
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  const dh = await fs.promises.open(path.dirname(file), 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** The most overwriteHead rewrites: within a file's first page and its first 512-byte sector. */
export const MAX_HEAD = 512;

/** What tells one version of a file from another without reading it. */
export interface FileIdentity {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
}

function identityOf(st: fs.BigIntStats): FileIdentity {
  return { ino: st.ino, size: st.size, mtimeNs: st.mtimeNs };
}

/** The file's identity now, or undefined when it is not there. */
export function fileIdentity(file: string): FileIdentity | undefined {
  const st = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
  return st && identityOf(st);
}

/**
 * Overwrites the first `head.length` bytes of a file in place (no temp file, no rename, no
 * new inode: a few µs, where writeFileAtomic over an existing file costs ext4 an early
 * allocation of the new file's blocks, 0.1-0.8 ms), if the file is still the version
 * `expect` names (same inode, size and mtime: nobody else wrote, truncated or replaced it
 * since the caller did). Returns the file's new identity, or undefined, writing nothing,
 * when it is not there or not that version.
 *
 * Atomic against the writer's death as writeFileAtomic is, as long as the bytes after the
 * head are unchanged (the caller's to know): the head is at most MAX_HEAD bytes at offset
 * 0, so it is one write() into the file's first page, which the kernel copies into the page
 * cache in one step (it checks for a fatal signal only between pages): a process killed at
 * any point leaves the old head or the new one. Not durable: against a machine crash it
 * would rest on the disk writing the sector whole, which dm-crypt/dm-integrity with larger
 * sectors do not promise; a caller that wants durability writes the whole file.
 * Synchronous, as writeFileAtomic's non-durable write: four syscalls of a few µs each.
 */
export function overwriteHead(file: string, head: Buffer, expect: FileIdentity): FileIdentity | undefined {
  if (head.length === 0 || head.length > MAX_HEAD) throw new RangeError(`a head of ${head.length} bytes`);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const before = fs.fstatSync(fd, { bigint: true });
    if (before.ino !== expect.ino || before.size !== expect.size || before.mtimeNs !== expect.mtimeNs) return undefined;
    if (fs.writeSync(fd, head, 0, head.length, 0) !== head.length) throw new Error(`short write to ${file}`);
    return identityOf(fs.fstatSync(fd, { bigint: true }));
  } finally {
    fs.closeSync(fd);
  }
}
