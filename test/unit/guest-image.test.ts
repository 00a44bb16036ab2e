// The guest image's parts that need no apt: the cpio "newc" writer (read back here by
// a reader written from the format's description), .modinfo read from ELF files, and
// the module load order (dependencies first; built-in drivers need nothing).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cpioNewc } from '../../src/guest/cpio';
import { GuestError } from '../../src/guest/errors';
import { GUEST_DRIVERS, modinfo, moduleLoadOrder, parseKernelConfig } from '../../src/guest/modules';

interface Entry {
  name: string;
  mode: number;
  nlink: number;
  mtime: number;
  rdev: [number, number];
  data: Buffer;
}

function readNewc(buf: Buffer): Entry[] {
  const out: Entry[] = [];
  let at = 0;
  const align = (n: number): number => (n + 3) & ~3;
  for (;;) {
    expect(buf.toString('ascii', at, at + 6)).toBe('070701');
    const f = (i: number): number => parseInt(buf.toString('ascii', at + 6 + i * 8, at + 14 + i * 8), 16);
    const [mode, nlink, mtime, size, rmaj, rmin, namesize] = [f(1), f(4), f(5), f(6), f(9), f(10), f(11)];
    const name = buf.toString('utf8', at + 110, at + 110 + namesize - 1);
    expect(buf[at + 110 + namesize - 1]).toBe(0);
    at = align(at + 110 + namesize);
    const data = buf.subarray(at, at + size);
    at = align(at + size);
    if (name === 'TRAILER!!!') {
      expect(at).toBe(buf.length);
      return out;
    }
    out.push({ name, mode, nlink, mtime, rdev: [rmaj, rmin], data });
  }
}

describe('cpioNewc', () => {
  it('writes dirs, files, symlinks and device nodes the way the kernel reads them', () => {
    const archive = cpioNewc([
      { kind: 'dir', path: 'bin' },
      { kind: 'file', path: '/bin/busybox', data: Buffer.from('ELF...'), mode: 0o755 },
      { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
      { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
      { kind: 'file', path: 'init', data: Buffer.from('#!/bin/sh\n') },
    ]);
    const got = readNewc(archive);
    expect(got.map((e) => [e.name, e.mode.toString(8), e.data.toString()])).toEqual([
      ['bin', '40755', ''],
      ['bin/busybox', '100755', 'ELF...'],
      ['bin/sh', '120777', 'busybox'],
      ['dev/console', '20600', ''],
      ['init', '100644', '#!/bin/sh\n'],
    ]);
    expect(got[3]!.rdev).toEqual([5, 1]);
    expect(got.map((e) => e.nlink)).toEqual([2, 1, 1, 1, 1]);
    expect(got.every((e) => e.mtime === 0)).toBe(true);
    // the same entries give the same bytes
    expect(cpioNewc([{ kind: 'dir', path: 'x' }]).equals(cpioNewc([{ kind: 'dir', path: 'x' }]))).toBe(true);
  });

  it('refuses paths that leave the archive', () => {
    expect(() => cpioNewc([{ kind: 'dir', path: '../etc' }])).toThrow(/bad path "..\/etc"/);
    expect(() => cpioNewc([{ kind: 'dir', path: '/' }])).toThrow(/bad path/);
  });
});

/** A minimal ELF64 little-endian object with a .shstrtab and a .modinfo section. */
function elfWithModinfo(info: string[]): Buffer {
  const shstrtab = Buffer.from('\0.shstrtab\0.modinfo\0');
  const mi = Buffer.from(info.map((s) => `${s}\0`).join(''));
  const shoff = 64 + shstrtab.length + mi.length;
  const buf = Buffer.alloc(shoff + 3 * 64);
  buf.writeUInt32BE(0x7f454c46, 0);
  buf[4] = 2; // ELFCLASS64
  buf[5] = 1; // little-endian
  buf.writeBigUInt64LE(BigInt(shoff), 0x28);
  buf.writeUInt16LE(64, 0x3a);
  buf.writeUInt16LE(3, 0x3c);
  buf.writeUInt16LE(1, 0x3e);
  shstrtab.copy(buf, 64);
  mi.copy(buf, 64 + shstrtab.length);
  const sh = (i: number, name: number, offset: number, size: number): void => {
    const at = shoff + i * 64;
    buf.writeUInt32LE(name, at);
    buf.writeBigUInt64LE(BigInt(offset), at + 0x18);
    buf.writeBigUInt64LE(BigInt(size), at + 0x20);
  };
  sh(1, 1, 64, shstrtab.length);
  sh(2, 11, 64 + shstrtab.length, mi.length);
  return buf;
}

describe('modinfo', () => {
  it('reads the key=value strings of .modinfo (the first of a repeated key)', () => {
    const m = modinfo(elfWithModinfo(['license=GPL', 'depends=virtio_ring,virtio', 'alias=a', 'alias=b']));
    expect(m.get('depends')).toBe('virtio_ring,virtio');
    expect(m.get('license')).toBe('GPL');
    expect(m.get('alias')).toBe('a');
  });

  it('refuses what is not a 64-bit little-endian ELF file', () => {
    expect(() => modinfo(Buffer.from('not an elf file, just some text to be long enough'.repeat(2)))).toThrow(
      /not a 64-bit little-endian ELF/,
    );
  });
});

describe('moduleLoadOrder', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-guest-mods-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const mods = path.join(tmp, 'lib/modules/6.1.0-test');
  const ko = (rel: string, depends: string): void => {
    fs.mkdirSync(path.dirname(path.join(mods, rel)), { recursive: true });
    fs.writeFileSync(path.join(mods, rel), elfWithModinfo([`depends=${depends}`, 'license=GPL']));
  };
  ko('kernel/drivers/virtio/virtio_ring.ko', '');
  ko('kernel/drivers/virtio/virtio.ko', 'virtio_ring');
  ko('kernel/drivers/virtio/virtio_pci_modern_dev.ko', '');
  ko('kernel/drivers/virtio/virtio_pci.ko', 'virtio_ring,virtio_pci_modern_dev,virtio');
  ko('kernel/net/core/failover.ko', '');
  ko('kernel/drivers/net/net_failover.ko', 'failover');
  ko('kernel/drivers/net/virtio_net.ko', 'virtio_ring,virtio,net_failover');
  ko('kernel/drivers/net/loop-a.ko', 'loop_b');
  ko('kernel/drivers/net/loop-b.ko', 'loop-a');
  const config = parseKernelConfig(
    '# CONFIG_FOO is not set\nCONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_NET=m\nCONFIG_PACKET=y\n',
  );
  const virtio = GUEST_DRIVERS.filter((d) => d.module.startsWith('virtio'));

  it('parses a kernel config', () => {
    expect([...config]).toEqual([
      ['CONFIG_VIRTIO_PCI', 'm'],
      ['CONFIG_VIRTIO_NET', 'm'],
      ['CONFIG_PACKET', 'y'],
    ]);
  });

  it('lists each module once, after the modules it depends on', () => {
    expect(moduleLoadOrder(mods, config, virtio)).toEqual([
      'kernel/drivers/virtio/virtio_ring.ko',
      'kernel/drivers/virtio/virtio_pci_modern_dev.ko',
      'kernel/drivers/virtio/virtio.ko',
      'kernel/drivers/virtio/virtio_pci.ko',
      'kernel/net/core/failover.ko',
      'kernel/drivers/net/net_failover.ko',
      'kernel/drivers/net/virtio_net.ko',
    ]);
  });

  it('needs nothing for a built-in driver', () => {
    const builtIn = parseKernelConfig('CONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_NET=m\n');
    expect(moduleLoadOrder(mods, builtIn, virtio)).not.toContain('kernel/drivers/virtio/virtio_pci.ko');
    expect(moduleLoadOrder(mods, parseKernelConfig('CONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_NET=y\n'), virtio)).toEqual([]);
  });

  it('fails with a typed error naming what is missing, unset or looping', () => {
    const err = (fn: () => unknown): GuestError => {
      try {
        fn();
      } catch (e) {
        return e as GuestError;
      }
      throw new Error('no error thrown');
    };
    const unset = err(() => moduleLoadOrder(mods, parseKernelConfig('CONFIG_VIRTIO_NET=m\n')));
    expect(unset.code).toBe('EBUILD');
    expect(unset.message).toBe('the guest kernel does not build virtio_pci (CONFIG_VIRTIO_PCI=unset)');
    const missing = err(() => moduleLoadOrder(mods, config, [{ module: 'e1000', config: 'CONFIG_VIRTIO_NET' }]));
    expect(missing.message).toMatch(/^module "e1000" \(needed by the guest\) is not in /);
    const loop = err(() => moduleLoadOrder(mods, config, [{ module: 'loop-a', config: 'CONFIG_VIRTIO_NET' }]));
    expect(loop.message).toBe('module dependency loop: loop_a -> loop_b -> loop_a');
  });
});
