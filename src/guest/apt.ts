// The Debian packages the guest is made of, through apt's ordinary clients: apt-cache
// names the candidate version (what `apt-get install` would take today), apt-get
// download fetches the .deb (checked against the signed archive index, as an install
// would). Nothing is installed on the host.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { mkdirPublic } from './cache';
import { GuestError } from './errors';

const run = promisify(execFile);

export interface DebPackage {
  name: string;
  version: string;
}

async function apt(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, {
      encoding: 'utf8',
      cwd,
      maxBuffer: 16 << 20,
      env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
    });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; code?: unknown; message: string };
    const why = (err.stderr ?? '').trim().split('\n').slice(-3).join('; ') || err.message;
    throw new GuestError('EAPT', `failed to run ${cmd} ${args.join(' ')}: ${why}`);
  }
}

/** The candidate versions apt knows for `names` (one apt-cache run); a name without one is absent. */
export async function candidates(names: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let current: string | undefined;
  for (const line of (await apt('apt-cache', ['policy', ...names])).split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) current = head[1];
    const cand = /^\s+Candidate:\s*(\S+)/.exec(line)?.[1];
    if (current && cand && cand !== '(none)') out.set(current, cand);
  }
  return out;
}

let updated = false;

/** The candidates of `names`; runs `apt-get update` once first when apt knows none (a fresh machine). */
export async function resolve(names: string[]): Promise<DebPackage[]> {
  let got = await candidates(names);
  if (names.some((n) => !got.has(n)) && !updated) {
    updated = true;
    await apt('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'update', '-qq']);
    got = await candidates(names);
  }
  const missing = names.filter((n) => !got.has(n));
  if (missing.length)
    throw new GuestError('EAPT', `apt has no installable version of ${missing.map((n) => `"${n}"`).join(', ')}`);
  return names.map((name) => ({ name, version: got.get(name)! }));
}

/**
 * The package a meta-package version depends on (linux-image-amd64 -> the kernel
 * image of the same release), in the exact version it pins, else its candidate.
 */
export async function dependencyOf(meta: DebPackage, pattern: RegExp): Promise<DebPackage> {
  const show = await apt('apt-cache', ['show', `${meta.name}=${meta.version}`]);
  const depends = /^Depends:\s*(.*)$/m.exec(show)?.[1] ?? '';
  for (const d of depends.split(',')) {
    const m = /^\s*(\S+)(?:\s*\(=\s*([^)\s]+)\))?/.exec(d);
    if (!m || !pattern.test(m[1]!)) continue;
    return m[2] ? { name: m[1]!, version: m[2] } : (await resolve([m[1]!]))[0]!;
  }
  throw new GuestError('EAPT', `package "${meta.name}" ${meta.version} depends on no package like ${pattern}`);
}

/** The file name a downloaded package is kept under. */
export const debFile = (p: DebPackage): string => `${p.name}_${p.version.replace(/:/g, '%3a')}_amd64.deb`;

/**
 * The .deb of `p` in `dir`, downloaded unless already there. Downloads into a private
 * directory and renames, so concurrent callers never see a partial file.
 */
export async function download(p: DebPackage, dir: string): Promise<string> {
  const dest = path.join(dir, debFile(p));
  if (fs.existsSync(dest)) return dest;
  mkdirPublic(dir);
  const tmp = fs.mkdtempSync(path.join(dir, `.dl-${process.pid}-`));
  try {
    // apt drops root to _apt for the download: let it write here (else it warns and stays root)
    try {
      const aptUid = Number((await run('id', ['-u', '_apt'])).stdout.trim());
      if (Number.isInteger(aptUid)) fs.chownSync(tmp, aptUid, -1);
    } catch {
      /* no _apt user: apt downloads as root */
    }
    await apt('apt-get', ['download', '-qq', `${p.name}=${p.version}`], tmp);
    const got = fs.readdirSync(tmp).filter((f) => f.endsWith('.deb'));
    if (got.length !== 1)
      throw new GuestError('EAPT', `apt-get download ${p.name}=${p.version} left ${got.length} .deb files`);
    fs.chownSync(path.join(tmp, got[0]!), 0, 0);
    fs.renameSync(path.join(tmp, got[0]!), dest);
    return dest;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
