// One guest image put together from unpacked packages: the kernel as it comes, and an
// initramfs (cpio newc, gzip) holding busybox with a link per applet, the kernel modules
// a virtio NIC needs in load order, and tapwire's rootfs files (src/guest/rootfs: /init,
// the DHCP script, the listener). Entries are sorted and carry no times, so the same
// inputs give the same bytes.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { DebPackage } from './apt';
import { CpioEntry, cpioNewc } from './cpio';
import { GuestError } from './errors';
import { moduleLoadOrder, parseKernelConfig } from './modules';

const run = promisify(execFile);

/** Bump when the way the image is put together changes (not for rootfs edits: those are hashed). */
export const BUILDER_VERSION = 2;
/** rootfs/<name> -> its path in the image */
export const ROOTFS_FILES: Record<string, string> = {
  init: 'init',
  dhcp4: 'etc/tapwire/dhcp4',
  serve: 'etc/tapwire/serve',
};

export interface GuestManifest {
  key: string;
  builder: number;
  /** sha256 of the rootfs files (init, dhcp4, serve) */
  rootfsHash: string;
  kernelVersion: string;
  packages: DebPackage[];
  modules: string[];
  kernelBytes: number;
  initrdBytes: number;
}

export async function dpkgExtract(deb: string, into: string): Promise<void> {
  try {
    await run('dpkg-deb', ['-x', deb, into]);
  } catch (e) {
    throw new GuestError('EBUILD', `failed to unpack "${deb}": ${(e as { stderr?: string }).stderr?.trim() ?? e}`);
  }
}

/** Every directory above each path, parents first, once. */
function parentDirs(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort();
}

export interface Inputs {
  key: string;
  packages: DebPackage[];
  rootfs: Map<string, Buffer>;
  rootfsHash: string;
}

export async function assemble(
  x: string,
  out: string,
  { key, packages, rootfs, rootfsHash }: Inputs,
): Promise<GuestManifest> {
  const boot = path.join(x, 'boot');
  const vmlinuz = fs.readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new GuestError('EBUILD', `no vmlinuz-* in the kernel package (${boot})`);
  const kernelVersion = vmlinuz.slice('vmlinuz-'.length);
  const config = parseKernelConfig(fs.readFileSync(path.join(boot, `config-${kernelVersion}`), 'utf8'));
  const modulesDir = path.join(x, 'lib', 'modules', kernelVersion);
  const modules = moduleLoadOrder(modulesDir, config).map((m) => `lib/modules/${kernelVersion}/${m}`);

  const busybox = path.join(x, 'bin', 'busybox');
  const applets = (await run(busybox, ['--list'])).stdout.split('\n').filter((a) => /^[\w.[-]+$/.test(a));
  const files = new Map<string, Buffer>();
  for (const [name, data] of rootfs) files.set(ROOTFS_FILES[name]!, data);
  files.set('bin/busybox', fs.readFileSync(busybox));
  files.set('etc/tapwire/modules', Buffer.from(modules.map((m) => `/${m}\n`).join('')));
  files.set('etc/tapwire/version', Buffer.from(`${BUILDER_VERSION}-${key}\n`));
  for (const m of modules) files.set(m, fs.readFileSync(path.join(x, m)));

  const entries: CpioEntry[] = [];
  const dirs = new Set([...parentDirs([...files.keys()]), 'dev', 'proc', 'sys', 'run', 'tmp', 'root']);
  for (const d of [...dirs].sort()) entries.push({ kind: 'dir', path: d });
  entries.push({ kind: 'chardev', path: 'dev/console', major: 5, minor: 1 });
  entries.push({ kind: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 });
  for (const [p, data] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const exec = p === 'init' || p === 'bin/busybox' || p === 'etc/tapwire/dhcp4' || p === 'etc/tapwire/serve';
    entries.push({ kind: 'file', path: p, data, mode: exec ? 0o755 : 0o644 });
  }
  for (const a of applets) if (a !== 'busybox') entries.push({ kind: 'symlink', path: `bin/${a}`, target: 'busybox' });

  const initrd = gzipSync(cpioNewc(entries), { level: 9 });
  fs.writeFileSync(path.join(out, 'initrd.img'), initrd);
  fs.copyFileSync(path.join(boot, vmlinuz), path.join(out, 'vmlinuz'));
  const manifest: GuestManifest = {
    key,
    builder: BUILDER_VERSION,
    rootfsHash,
    kernelVersion,
    packages,
    modules,
    kernelBytes: fs.statSync(path.join(out, 'vmlinuz')).size,
    initrdBytes: initrd.length,
  };
  fs.writeFileSync(path.join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  // readable by an unprivileged emulator whatever the umask
  for (const f of ['initrd.img', 'vmlinuz', 'manifest.json']) fs.chmodSync(path.join(out, f), 0o644);
  return manifest;
}
