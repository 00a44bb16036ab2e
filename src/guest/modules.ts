// The kernel modules the guest loads, found in an unpacked Debian kernel package. A
// driver built in (=y in the package's /boot/config-*) needs nothing; a module (=m) comes
// with the modules it depends on, read from each .ko's .modinfo section ("depends="),
// in load order. The package has no modules.dep (depmod runs at install time), so this
// reads the ELF files themselves.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GuestError } from './errors';

/**
 * Drivers the guest needs and the config symbol that builds each: one for every NIC
 * model of the network spec (virtio, e1000, e1000e, ne2k_pci, pcnet, rtl8139).
 */
export const GUEST_DRIVERS: readonly { module: string; config: string }[] = [
  { module: 'virtio_pci', config: 'CONFIG_VIRTIO_PCI' },
  { module: 'virtio_net', config: 'CONFIG_VIRTIO_NET' },
  { module: 'e1000', config: 'CONFIG_E1000' },
  { module: 'e1000e', config: 'CONFIG_E1000E' },
  { module: 'ne2k-pci', config: 'CONFIG_NE2K_PCI' },
  { module: 'pcnet32', config: 'CONFIG_PCNET32' },
  { module: '8139cp', config: 'CONFIG_8139CP' }, // QEMU's rtl8139 is a C+ chip (rev 0x20), which 8139too refuses
];

/** Module names treat '-' and '_' alike. */
const norm = (name: string): string => name.replace(/-/g, '_');

/** The NUL-separated key=value strings of an ELF64 little-endian object's .modinfo. */
export function modinfo(elf: Buffer): Map<string, string> {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) {
    throw new Error('not a 64-bit little-endian ELF file');
  }
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const section = (i: number): { name: number; offset: number; size: number } => {
    const at = shoff + i * shentsize;
    if (at + 64 > elf.length) throw new Error('section header past the end of the file');
    return {
      name: elf.readUInt32LE(at),
      offset: Number(elf.readBigUInt64LE(at + 0x18)),
      size: Number(elf.readBigUInt64LE(at + 0x20)),
    };
  };
  const strtab = section(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const nameAt = strtab.offset + s.name;
    const name = elf.toString('latin1', nameAt, elf.indexOf(0, nameAt));
    if (name !== '.modinfo') continue;
    const out = new Map<string, string>();
    for (const kv of elf.toString('latin1', s.offset, s.offset + s.size).split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0 && !out.has(kv.slice(0, eq))) out.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    return out;
  }
  throw new Error('no .modinfo section');
}

/** CONFIG_X -> 'y' | 'm' | ... from a kernel config file's text. */
export function parseKernelConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^(CONFIG_\w+)=(.*)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

function indexModules(dir: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) found.set(norm(e.name.slice(0, -3)), p);
    }
  };
  walk(dir);
  return found;
}

/**
 * The .ko files (paths relative to `modulesDir`) to load, dependencies first, for the
 * drivers `config` builds as modules. `modulesDir` is /lib/modules/<version> of the package.
 */
export function moduleLoadOrder(
  modulesDir: string,
  config: Map<string, string>,
  drivers: readonly { module: string; config: string }[] = GUEST_DRIVERS,
): string[] {
  const index = indexModules(path.join(modulesDir, 'kernel'));
  const order: string[] = [];
  const done = new Set<string>();
  const visit = (name: string, chain: string[]): void => {
    if (done.has(name)) return;
    if (chain.includes(name))
      throw new GuestError('EBUILD', `module dependency loop: ${[...chain, name].join(' -> ')}`);
    const file = index.get(name);
    if (!file) {
      throw new GuestError(
        'EBUILD',
        `module "${name}" (needed by ${chain.join(' -> ') || 'the guest'}) is not in ${modulesDir}`,
      );
    }
    let info: Map<string, string>;
    try {
      info = modinfo(fs.readFileSync(file));
    } catch (e) {
      throw new GuestError('EBUILD', `failed to read .modinfo of "${file}": ${(e as Error).message}`);
    }
    for (const dep of (info.get('depends') ?? '').split(',').filter(Boolean)) visit(norm(dep), [...chain, name]);
    done.add(name);
    order.push(path.relative(modulesDir, file));
  };
  for (const d of drivers) {
    const how = config.get(d.config);
    if (how === 'y') continue;
    if (how !== 'm') {
      throw new GuestError('EBUILD', `the guest kernel does not build ${d.module} (${d.config}=${how ?? 'unset'})`);
    }
    visit(norm(d.module), []);
  }
  return order;
}
