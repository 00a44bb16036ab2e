// What tests run as another user (nobody's hostile peers, libvirt's emulator user) must be
// reachable by that user. A checkout under /root or a mktemp dir (0700) is not: there the
// parts such a process loads (dist/, the addon, the vmwrapper shim, the test fixtures'
// scripts) are copied once per test process into a world-readable temp dir
// (twt-<pid>-tree-*), removed when the process exits, or by the global sweep once that
// process is gone (vitest ends its workers with a signal). A checkout others can read is
// used as it is.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ownerPid } from './names';

const ROOT = path.resolve(__dirname, '../..');
/** The parts of the checkout a process of another user loads. */
const PARTS = ['dist', 'build/Release/tapwire.node', 'deploy/libvirt/vmwrapper', 'test/fixtures', 'package.json'];

let tree: string | undefined;

/** Whether every directory down to `p` lets others through (o+x). */
function othersCanReach(p: string): boolean {
  for (let d = path.dirname(p); ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) return false;
    if (d === path.dirname(d)) return true;
  }
}

/** The checkout root, or a world-readable copy of its runtime parts when others cannot reach it. */
export function runtimeTree(): string {
  if (tree) return tree;
  if (othersCanReach(path.join(ROOT, 'package.json'))) return (tree = ROOT);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twt-${process.pid.toString(36)}-tree-`));
  fs.chmodSync(dir, 0o755);
  for (const part of PARTS) {
    const from = path.join(ROOT, part);
    if (!fs.existsSync(from)) continue;
    fs.mkdirSync(path.dirname(path.join(dir, part)), { recursive: true, mode: 0o755 });
    fs.cpSync(from, path.join(dir, part), { recursive: true });
  }
  chmodReadable(dir);
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return (tree = dir);
}

/** o+r on files, o+rx on directories and on files that others may execute already for their owner. */
function chmodReadable(p: string): void {
  const st = fs.statSync(p);
  if (st.isDirectory()) {
    fs.chmodSync(p, st.mode | 0o555);
    for (const e of fs.readdirSync(p)) chmodReadable(path.join(p, e));
  } else {
    fs.chmodSync(p, st.mode | 0o444 | (st.mode & 0o100 ? 0o111 : 0));
  }
}

/** Removes the runtime trees of test processes that are gone. */
export function sweepRuntimeTrees(alive: (pid: number) => boolean): void {
  for (const name of fs.readdirSync(os.tmpdir())) {
    if (!/^twt-[0-9a-z]+-tree-/.test(name)) continue;
    const pid = ownerPid(name);
    if (pid !== undefined && alive(pid)) continue;
    fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
  }
}
