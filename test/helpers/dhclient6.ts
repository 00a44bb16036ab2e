// ISC dhclient -6 in a guest namespace, as the priv tests run it: foreground, its hook
// putting each leased address on the interface (a /128) and recording every event
// (writeRecorder: an event's file appears only once the hook is done, so a test never
// reads one half written). Each start has its own dir (lease, pid, events).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readEvents, waitFor, writeRecorder } from '../fixtures/dhcp-net';
import { spawnIn, type Proc } from '../fixtures/dhcp-procs';
import type { TestNetns } from './netns';

export interface Dhclient6 {
  proc: Proc;
  /** the environment of its first BOUND6, waited for (20 s) */
  bound(): Promise<Record<string, string>>;
}

/** dhclient -6 on ifname in ns; its files under dir/dhclient6-<tag>. */
export function startDhclient6(ns: TestNetns, dir: string, ifname: string, tag = '1'): Dhclient6 {
  const own = path.join(dir, `dhclient6-${tag}`);
  fs.mkdirSync(own, { recursive: true });
  const hook = writeRecorder(own, 'dhclient6');
  const args = ['-d', '-6', '-v', '-sf', hook, '-lf', path.join(own, 'lease6'), '-pf', path.join(own, 'pid6'), ifname];
  const proc = spawnIn(ns, 'dhclient', args);
  return {
    proc,
    bound: async () =>
      (await waitFor('dhclient -6 bound', () => readEvents(own).find((e) => e.name === 'BOUND6'), 20_000, proc.output))
        .env,
  };
}
