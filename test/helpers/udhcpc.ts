// busybox udhcpc in a guest namespace, as the priv tests run it: foreground, its hook
// applying each lease and recording every event in dir (writeRecorder: an event's file
// appears only once the lease is applied), 10 tries one second apart.
import { readEvents, waitFor, writeRecorder, type ClientEvent } from '../fixtures/dhcp-net';
import { spawnIn, type Proc } from '../fixtures/dhcp-procs';
import type { TestNetns } from './netns';

export interface Udhcpc {
  proc: Proc;
  /** its first `bound` event, waited for (20 s); a timeout names the client's output and `detail` */
  bound(detail?: () => string): Promise<ClientEvent>;
}

/** udhcpc on ifname in ns, asking for each of `options` (-O). */
export function startUdhcpc(ns: TestNetns, dir: string, ifname: string, options: string[] = []): Udhcpc {
  const args = ['udhcpc', '-f', '-i', ifname, '-s', writeRecorder(dir, 'udhcpc'), '-t', '10', '-T', '1'];
  const proc = spawnIn(ns, 'busybox', [...args, ...options.flatMap((o) => ['-O', o])]);
  return {
    proc,
    bound: (detail) =>
      waitFor(
        'udhcpc bound',
        () => readEvents(dir).find((e) => e.name === 'bound'),
        20_000,
        () => `udhcpc: ${proc.output()}${detail ? `\n${detail()}` : ''}`,
      ),
  };
}
