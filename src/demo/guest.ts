// Boots tapwire's guest (src/guest: Debian kernel + busybox initramfs that leases
// an address, pings its gateway and powers off) through vmwrapper, the way a runtime
// would: exec the vmwrapper shim with TAPWIRE_NET_KEY in its environment, unprivileged
// when the checkout allows it. Returns the guest's report for the demo to show.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureGuest, GuestLease, guestCmdline, qemuArgs, startGuest } from '../guest';

export interface GuestRun {
  /** the user vmwrapper and QEMU ran as */
  user: string;
  /** what /proc/<pid>/exe showed once the guest was up: vmwrapper had become QEMU */
  execedInto: string;
  lease: GuestLease | undefined;
  /** the guest's report lines */
  lines: string[];
  /** why the guest is not judged ok (empty when ok) */
  problems: string[];
  ok: boolean;
}

export interface GuestOptions {
  shim: string;
  netKey: string;
  fdSocket: string;
  emulator: string;
  workDir: string;
  timeoutMs: number;
}

const NOBODY = { uid: 65534, gid: 65534 };

/** True if uid nobody can reach and read `file` (o+x on every directory, o+r on it). */
function nobodyCanRead(file: string): boolean {
  let p = path.resolve(file);
  if (!(fs.statSync(p).mode & 0o004)) return false;
  for (p = path.dirname(p); ; p = path.dirname(p)) {
    if (!(fs.statSync(p).mode & 0o001)) return false;
    if (p === '/') return true;
  }
}

export async function bootGuest(o: GuestOptions): Promise<GuestRun> {
  const image = await ensureGuest();
  const asNobody = [o.shim, process.execPath, image.kernel, image.initrd].every(nobodyCanRead);
  fs.mkdirSync(o.workDir, { recursive: true });
  if (asNobody) fs.chownSync(o.workDir, NOBODY.uid, NOBODY.gid);
  // udhcpc's default of 15 tries 2 s apart is short when other TCG guests share the cores
  const append = [guestCmdline({ dhcpTries: 20 }), process.env.TAPWIRE_DEMO_APPEND].filter(Boolean).join(' ');
  const args = qemuArgs({ kernel: image.kernel, initrd: image.initrd, append, name: 'tapwire-demo', console: 'stdio' });
  let execedInto = '?';
  const run = startGuest({
    command: o.shim,
    args,
    console: 'stdio',
    cwd: o.workDir,
    ...(asNobody ? NOBODY : {}),
    env: {
      PATH: '/usr/bin:/bin',
      TAPWIRE_NODE: process.execPath,
      TAPWIRE_NET_KEY: o.netKey,
      TAPWIRE_EMULATOR: o.emulator,
      TAPWIRE_FD_SOCKET: o.fdSocket,
    },
    timeoutMs: o.timeoutMs,
    expect: { leases: 1, pings: 1 },
    onLine: (l) => {
      // the guest is talking: QEMU is running, so the pid vmwrapper started as is QEMU now
      if (l.event !== 'start') return;
      try {
        execedInto = `${fs.readlinkSync(`/proc/${run.pid}/exe`)} (pid ${run.pid}, the pid vmwrapper started as)`;
      } catch {
        /* already gone */
      }
    },
  });
  const res = await run.result;
  if (res.report.lines.length === 0 && res.exitCode !== 0) {
    throw new Error(`vmwrapper/QEMU exited ${res.exitCode}: ${res.stderr.trim() || 'no output'}`);
  }
  return {
    user: asNobody ? 'nobody' : 'root',
    execedInto,
    lease: res.report.leases[0],
    lines: res.report.lines,
    problems: res.verdict.ok ? [] : [...res.verdict.problems, ...res.tail.slice(-10).map((l) => `console: ${l}`)],
    ok: res.verdict.ok,
  };
}
