// An initramfs archive: cpio "newc" (the format the kernel unpacks, see the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst), written in memory so the
// image needs neither cpio(1) nor root for its device node. Every entry has mtime 0 and
// owner root, so the same inputs give the same bytes.

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Buffer; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = 'TRAILER!!!';

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

function header(ino: number, mode: number, size: number, name: string, rdev = { major: 0, minor: 0 }): Buffer {
  const fields = [ino, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, size, 0, 0, rdev.major, rdev.minor];
  const nameBytes = Buffer.from(`${name}\0`);
  const head = Buffer.from(`070701${fields.map(hex8).join('')}${hex8(nameBytes.length)}${hex8(0)}`, 'ascii');
  return Buffer.concat([head, nameBytes, pad4(head.length + nameBytes.length)]);
}

/** The archive of `entries` in order (parents before children), with the trailer. */
export function cpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (!name || name.split('/').includes('..')) throw new Error(`cpio: bad path "${e.path}"`);
    let mode: number;
    let data: Buffer = Buffer.alloc(0);
    let rdev = { major: 0, minor: 0 };
    switch (e.kind) {
      case 'dir':
        mode = S_IFDIR | (e.mode ?? 0o755);
        break;
      case 'file':
        mode = S_IFREG | (e.mode ?? 0o644);
        data = e.data;
        break;
      case 'symlink':
        mode = S_IFLNK | 0o777;
        data = Buffer.from(e.target);
        break;
      case 'chardev':
        mode = S_IFCHR | (e.mode ?? 0o600);
        rdev = { major: e.major, minor: e.minor };
        break;
    }
    parts.push(header(ino++, mode, data.length, name, rdev), data, pad4(data.length));
  }
  parts.push(header(0, 0, 0, TRAILER));
  return Buffer.concat(parts);
}
