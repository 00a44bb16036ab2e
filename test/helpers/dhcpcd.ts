// dhcpcd in a guest namespace, as the priv tests run it: in a private mount namespace with
// a tmpfs on /run and /var/lib/dhcpcd (no pid file, lease or control socket of the host's),
// its config written to dir, its hook recording every event (writeRecorder).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeRecorder } from '../fixtures/dhcp-net';
import { spawnIn, type Proc } from '../fixtures/dhcp-procs';
import type { TestNetns } from './netns';

/** dhcpcd on ifname in ns with `conf` as its config and `flags` before its own (-d -f -c). */
export function startDhcpcd(ns: TestNetns, dir: string, conf: string, flags: string[], ifname: string): Proc {
  const confFile = path.join(dir, 'dhcpcd.conf');
  fs.writeFileSync(confFile, conf);
  const inner = 'mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib/dhcpcd && exec dhcpcd "$@"';
  const ownMounts = ['-m', '--propagation', 'private', 'sh', '-c', inner, 'sh'];
  const args = [...flags, '-d', '-f', confFile, '-c', writeRecorder(dir, 'none'), ifname];
  return spawnIn(ns, 'unshare', [...ownMounts, ...args]);
}
