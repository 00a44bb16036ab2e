#!/usr/bin/env node
// tapwire's guest image, built when needed: Debian's kernel, busybox-static and dhcpcd
// (dhcpcd-base, the DHCPv6 client, as Debian's busybox has no udhcpc6; libc6 for the
// libraries it loads) (apt-get download, unpacked with dpkg-deb, never installed) put
// together by image.ts with tapwire's own /init (src/guest/rootfs). Cached under
// cacheRoot() in a directory named for the hash of every input (builder version, the
// rootfs files, the package versions apt would install today, the drivers), so a change
// to any of them builds a new image and an unchanged one is reused.
//
//   node dist/src/guest/build.js [--json]   builds when needed, prints the image
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DebPackage, debFile, dependencyOf, download, resolve } from './apt';
import { cacheRoot, pruneBuilds, pruneDebs, sweepTemp, withLock } from './cache';
import { GuestError } from './errors';
import { assemble, BUILDER_VERSION, dpkgExtract, GuestManifest, ROOTFS_FILES } from './image';
import { GUEST_DRIVERS } from './modules';

export { BUILDER_VERSION, GuestManifest };

// the generic flavour: the cloud one builds no driver for the spec's emulated NIC models
// (e1000, e1000e, ne2k_pci, pcnet, rtl8139); the initramfs takes only the modules used
const KERNEL_META = 'linux-image-amd64';
const KERNEL_PKG = /^linux-image-[0-9][^-]*-[0-9]+-amd64$/;
const BUSYBOX = 'busybox-static';
// dhcpcd over ISC dhclient: 380 KB against 2.7 MB (both need only libc), and it applies the
// DHCPv6 address itself where dhclient needs a script to (dhclient-script is bash)
const DHCPCD_PKG = 'dhcpcd-base';
const LIBC = 'libc6';

export interface GuestImage {
  /** the build's directory under the cache */
  dir: string;
  kernel: string;
  initrd: string;
  manifest: GuestManifest;
}

function rootfsDir(): string {
  // src/guest (tests run the sources) or dist/src/guest (the built output)
  for (const d of [path.join(__dirname, 'rootfs'), path.resolve(__dirname, '../../../src/guest/rootfs')]) {
    if (fs.existsSync(path.join(d, 'init'))) return d;
  }
  throw new GuestError('EBUILD', `cannot find the guest rootfs (init) next to ${__dirname}`);
}

function imageOf(dir: string): GuestImage | undefined {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as GuestManifest;
    return { dir, kernel: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.img'), manifest };
  } catch {
    return undefined;
  }
}

export interface EnsureOptions {
  /** the cache directory (default cacheRoot(): TAPWIRE_CACHE/guest or /var/cache/tapwire/guest) */
  cacheDir?: string;
  /** progress lines (default: none) */
  log?: (line: string) => void;
  /** the directory holding the rootfs files (ROOTFS_FILES; default: src/guest/rootfs) */
  rootfsDir?: string;
}

/** The guest image for today's package versions: from the cache, or built (and cached) now. */

/** The newest cached build of this builder made from the same rootfs, if any. */
function newestBuild(root: string, rootfsHash: string): GuestImage | undefined {
  const found = (fs.existsSync(root) ? fs.readdirSync(root) : [])
    .filter((n) => /^[0-9a-f]{16}$/.test(n))
    .map((n) => imageOf(path.join(root, n)))
    .filter((i): i is GuestImage => i?.manifest.builder === BUILDER_VERSION && i.manifest.rootfsHash === rootfsHash)
    .map((i) => ({ i, mtime: fs.statSync(i.dir).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  return found[0]?.i;
}

/** The packages apt would install today: the kernel image, busybox-static, dhcpcd and libc. */
async function currentPackages(): Promise<DebPackage[]> {
  const [meta, ...rest] = await resolve([KERNEL_META, BUSYBOX, DHCPCD_PKG, LIBC]);
  return [await dependencyOf(meta!, KERNEL_PKG), ...rest];
}

/**
 * The guest image for today's package versions: from the cache, or built (and cached)
 * now. When apt cannot name the versions (no network, no package lists), the newest
 * cached image made from the same rootfs is used instead.
 */
export async function ensureGuest(o: EnsureOptions = {}): Promise<GuestImage> {
  const root = o.cacheDir ?? cacheRoot();
  const log = o.log ?? ((): void => {});
  const dir = o.rootfsDir ?? rootfsDir();
  const rootfs = new Map(Object.keys(ROOTFS_FILES).map((n) => [n, fs.readFileSync(path.join(dir, n))]));
  const rootfsHash = createHash('sha256');
  for (const [n, data] of rootfs) rootfsHash.update(`\0${n}\0`).update(data);
  const rootfsHex = rootfsHash.digest('hex');
  let packages: DebPackage[];
  try {
    packages = await currentPackages();
  } catch (e) {
    const fallback = e instanceof GuestError && e.code === 'EAPT' ? newestBuild(root, rootfsHex) : undefined;
    if (!fallback) throw e;
    log(
      `${(e as Error).message}; using the cached image ${fallback.manifest.key} (same rootfs, package versions not checked)`,
    );
    return fallback;
  }
  const key = createHash('sha256')
    .update(JSON.stringify({ builder: BUILDER_VERSION, packages, GUEST_DRIVERS, rootfs: rootfsHex }))
    .digest('hex')
    .slice(0, 16);
  const target = path.join(root, key);

  const cached = imageOf(target);
  if (cached) return cached;
  return withLock(root, async () => {
    const raced = imageOf(target); // built by whoever held the lock before us
    if (raced) return raced;
    sweepTemp(root);
    log(`building the guest image ${key} (${packages.map((p) => `${p.name} ${p.version}`).join(', ')})`);
    const debs: string[] = [];
    for (const p of packages) debs.push(await download(p, path.join(root, 'debs')));
    const tmp = fs.mkdtempSync(path.join(root, `.build-${process.pid}-`));
    try {
      const x = path.join(tmp, 'x');
      for (const deb of debs) await dpkgExtract(deb, x);
      const out = path.join(tmp, 'out');
      fs.mkdirSync(out, { mode: 0o755 });
      fs.chmodSync(out, 0o755);
      await assemble(x, out, { key, packages, rootfs, rootfsHash: rootfsHex });
      fs.renameSync(out, target);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    pruneBuilds(root, key);
    pruneDebs(path.join(root, 'debs'), packages.map(debFile));
    const image = imageOf(target);
    if (!image) throw new GuestError('EBUILD', `the guest image in "${target}" has no readable manifest`);
    log(`guest image ${key}: kernel ${image.manifest.kernelVersion}, initrd ${image.manifest.initrdBytes} bytes`);
    return image;
  });
}

if (require.main === module) {
  ensureGuest({ log: (l) => process.stderr.write(`[guest] ${l}\n`) })
    .then((img) => {
      if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(img, null, 2)}\n`);
      else process.stdout.write(`kernel ${img.kernel}\ninitrd ${img.initrd}\n`);
    })
    .catch((e: unknown) => {
      process.stderr.write(`guest build failed: ${(e as Error).message}\n`);
      process.exitCode = 1;
    });
}
