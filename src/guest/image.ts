// One guest image put together from unpacked packages: the kernel as it comes, and an
// initramfs (cpio newc, gzip) holding busybox with a link per applet, dhcpcd (the DHCPv6
// client: busybox has no udhcpc6) with the shared libraries it loads, the kernel modules
// the NICs need in load order, and tapwire's rootfs files (src/guest/rootfs: /init, the
// DHCP scripts, dhcpcd's config, the listener). Entries are sorted and carry no times, so
// the same inputs give the same bytes.
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
export const BUILDER_VERSION = 3;
/** rootfs/<name> -> its path in the image */
export const ROOTFS_FILES: Record<string, string> = {
  init: 'init',
  dhcp4: 'etc/tapwire/dhcp4',
  dhcp6: 'etc/tapwire/dhcp6',
  'dhcpcd.conf': 'etc/tapwire/dhcpcd.conf',
  passwd: 'etc/passwd',
  serve: 'etc/tapwire/serve',
};
/** the image's programs and scripts (mode 0755) */
const EXECUTABLES = new Set(['init', 'bin/busybox', 'etc/tapwire/dhcp4', 'etc/tapwire/dhcp6', 'etc/tapwire/serve']);
/** the DHCPv6 client (Debian's dhcpcd-base) and where it lives in the package and the image */
export const DHCPCD = 'usr/sbin/dhcpcd';
/** the program interpreter amd64 binaries ask for (a link in libc6 to the loader's real place) */
const LOADER = 'lib64/ld-linux-x86-64.so.2';
/** dhcpcd's privilege-separation user chroots to its home: an empty directory */
const DHCPCD_HOME = 'usr/lib/dhcpcd';

export interface GuestManifest {
  key: string;
  builder: number;
  /** sha256 of the rootfs files (init, dhcp4, dhcp6, dhcpcd.conf, passwd, serve) */
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

/**
 * The shared objects `bin` (a path under `x`, the unpacked packages) loads, as the
 * packages' own loader resolves them (`ld.so --list`, ldd's way, with only the packages'
 * library directories): the files to copy (image path -> file under x) and the links
 * on the way (the interpreter path the binary asks for -> the loader's real place). A
 * library the packages lack is an error: nothing of the build host's leaks in.
 */
export async function sharedObjects(
  x: string,
  bin: string,
): Promise<{ files: Map<string, string>; links: Map<string, string> }> {
  const root = path.resolve(x);
  const loaderLink = path.join(root, LOADER);
  let loader: string;
  try {
    loader = path.join(root, path.relative('/', fs.readlinkSync(loaderLink)));
  } catch {
    loader = loaderLink; // a real file there
  }
  const libDirs = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu'].map((d) => path.join(root, d));
  let out: string;
  try {
    out = (
      await run(loader, ['--inhibit-cache', '--library-path', libDirs.join(':'), '--list', path.join(root, bin)], {
        encoding: 'utf8',
      })
    ).stdout;
  } catch (e) {
    const why = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    throw new GuestError('EBUILD', `failed to list the libraries of "${bin}" with ${loader}: ${why}`);
  }
  const files = new Map<string, string>();
  const links = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^\s*(\S+) => (.+?)(?: \(0x[0-9a-f]+\))?$/.exec(line);
    if (!m) continue;
    const [, wanted, found] = m as unknown as [string, string, string];
    const rel = path.relative(root, found);
    if (found === 'not found' || rel.startsWith('..') || path.isAbsolute(rel))
      throw new GuestError('EBUILD', `"${bin}" needs ${wanted}, which the packages do not hold (${found})`);
    files.set(rel, found);
    if (wanted.startsWith('/') && wanted.slice(1) !== rel) links.set(wanted.slice(1), `/${rel}`);
  }
  return { files, links };
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
  if (!fs.existsSync(path.join(x, DHCPCD))) throw new GuestError('EBUILD', `no ${DHCPCD} in the packages (${x})`);
  const libs = await sharedObjects(x, DHCPCD);
  const execModes = new Map<string, boolean>();
  for (const [p, file] of [[DHCPCD, path.join(x, DHCPCD)], ...libs.files] as [string, string][]) {
    files.set(p, fs.readFileSync(file));
    execModes.set(p, (fs.statSync(file).mode & 0o111) !== 0);
  }
  files.set('etc/tapwire/modules', Buffer.from(modules.map((m) => `/${m}\n`).join('')));
  files.set('etc/tapwire/version', Buffer.from(`${BUILDER_VERSION}-${key}\n`));
  for (const m of modules) files.set(m, fs.readFileSync(path.join(x, m)));

  const entries: CpioEntry[] = [];
  const dirs = new Set([
    ...parentDirs([...files.keys(), ...libs.links.keys()]),
    ...['dev', 'proc', 'sys', 'run', 'tmp', 'root', 'var/lib/dhcpcd', DHCPCD_HOME],
  ]);
  for (const d of [...parentDirs([...dirs].map((d) => `${d}/x`))].sort()) entries.push({ kind: 'dir', path: d });
  entries.push({ kind: 'chardev', path: 'dev/console', major: 5, minor: 1 });
  entries.push({ kind: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 });
  for (const [p, data] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const exec = EXECUTABLES.has(p) || execModes.get(p) === true;
    entries.push({ kind: 'file', path: p, data, mode: exec ? 0o755 : 0o644 });
  }
  for (const [p, target] of libs.links) entries.push({ kind: 'symlink', path: p, target });
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
