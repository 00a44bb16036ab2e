// Boots the e2e guest (../shared/e2e: Debian kernel + busybox initramfs that leases an
// address, pings its gateway and powers off) through vmwrapper, the way a runtime would:
// exec the vmwrapper shim with TAPWIRE_NET_KEY in its environment, unprivileged when the
// checkout allows it. Reports the guest's console lines the demo shows.
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface GuestRun {
  /** the user vmwrapper and QEMU ran as */
  user: string;
  /** what /proc/<pid>/exe showed once the guest was up: vmwrapper had become QEMU */
  execedInto: string;
  /** DHCP-BOUND line fields, e.g. ip, mask, router, dns, mtu, routes, hostname */
  lease: Record<string, string>;
  lines: string[];
  ok: boolean;
}

export interface GuestOptions {
  shim: string;
  netKey: string;
  fdSocket: string;
  emulator: string;
  bootGuest: string;
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

export function guestArgs(bootGuest: string): string[] {
  const line = execFileSync(
    'python3',
    [bootGuest, '--print-guest-args', '--append', `e2e.dhcp_tries=20 ${process.env.TAPWIRE_DEMO_APPEND ?? ''}`.trim()],
    {
      encoding: 'utf8',
    },
  );
  const kernel = /-kernel (\S+)/.exec(line)?.[1];
  const initrd = /-initrd (\S+)/.exec(line)?.[1];
  const append = /-append '([^']*)'/.exec(line)?.[1];
  if (!kernel || !initrd || append === undefined) throw new Error(`cannot parse ${bootGuest} output: ${line}`);
  return ['-kernel', kernel, '-initrd', initrd, '-append', append];
}

export async function bootGuest(o: GuestOptions): Promise<GuestRun> {
  const boot = guestArgs(o.bootGuest);
  const asNobody = [o.shim, process.execPath, boot[1]!, boot[3]!].every(nobodyCanRead);
  fs.mkdirSync(o.workDir, { recursive: true });
  if (asNobody) fs.chownSync(o.workDir, NOBODY.uid, NOBODY.gid);
  const log = path.join(o.workDir, 'console.log');
  const args = [
    '-name', 'tapwire-demo', '-machine', 'pc', '-accel', 'tcg', '-m', '256', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-monitor', 'none',
    '-serial', `file:${log}`, ...boot,
  ]; // prettier-ignore
  let stderr = '';
  const proc = spawn(o.shim, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    cwd: o.workDir,
    ...(asNobody ? NOBODY : {}),
    env: {
      PATH: '/usr/bin:/bin',
      TAPWIRE_NODE: process.execPath,
      TAPWIRE_NET_KEY: o.netKey,
      TAPWIRE_EMULATOR: o.emulator,
      TAPWIRE_FD_SOCKET: o.fdSocket,
    },
  });
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('close', (c) => r(c)));
  let execedInto = '?';
  const timer = setTimeout(() => proc.kill('SIGKILL'), o.timeoutMs);
  try {
    for (let i = 0; i < 200 && !fs.existsSync(log) && proc.exitCode === null; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    try {
      execedInto = `${fs.readlinkSync(`/proc/${proc.pid}/exe`)} (pid ${proc.pid}, the pid vmwrapper started as)`;
    } catch {
      /* already gone */
    }
    const code = await exited;
    const lines = fs.existsSync(log)
      ? fs
          .readFileSync(log, 'utf8')
          .split(/\r?\n/)
          .filter((l) => /^(E2E-|DHCP-|PING-)/.test(l))
      : [];
    if (code !== 0 && lines.length === 0) {
      throw new Error(`vmwrapper/QEMU exited ${code}: ${stderr.trim() || 'no output'}`);
    }
    const bound = lines.find((l) => l.startsWith('DHCP-BOUND')) ?? '';
    const lease: Record<string, string> = {};
    for (const m of bound.matchAll(/(\w+)=(\S*)/g)) lease[m[1]!] = m[2]!;
    const ok = lines.some((l) => l.startsWith('E2E-DONE status=ok'));
    return { user: asNobody ? 'nobody' : 'root', execedInto, lease, lines, ok };
  } finally {
    clearTimeout(timer);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
}
