// The real daemon refuses to take its own network namespace or the host's (PID 1's) for
// a pod: that would strip the node's uplink and bridge it. The daemon runs inside a
// pod-shaped namespace the test made (uplink eth0 with an address and a default route),
// so "its own namespace" is a throwaway one, and the request naming the host's names an
// interface the host does not have: a missing check fails on that, touching nothing.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { ipDump, settledDump } from '../helpers/ip-dump';
import { removeAllNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('tapmanager and the host network namespace', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-hostns-'));
  });
  afterEach(async () => {
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("refuses its own netns (by symlink to /proc/<pid>/ns/net or by name) and PID 1's, naming netnsPath; nothing changes", async () => {
    const home = makePod({ ipv6: true }); // the daemon's namespace: eth0 is its "uplink"
    const before = await settledDump(home.pod);
    const d = await startDaemon(dir, { netns: home.pod.name });
    const link = path.join(dir, 'ns-link');
    fs.symlinkSync(`/proc/${d.child.pid}/ns/net`, link);

    const inNetns = (netnsPath: string) => ({
      ...home.cniResult,
      interfaces: [home.cniResult.interfaces![0]!, { ...home.cniResult.interfaces![1]!, sandbox: netnsPath }],
    });
    for (const netnsPath of [link, home.pod.path]) {
      await expect(
        d.client.setup({ sandboxId: 'sb-own', netnsPath, cniResult: inNetns(netnsPath) }),
      ).rejects.toMatchObject({
        code: 'EINVAL',
        field: 'netnsPath',
        message: expect.stringContaining(`${JSON.stringify(netnsPath)}: is tapmanager's own network namespace`),
      });
    }
    const host = '/proc/1/ns/net';
    const hostResult = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'twnoexist0', sandbox: host }],
      ips: [{ address: '10.252.0.2/24', interface: 0 }],
    };
    // where PID 1 cannot be inspected (non-dumpable init of a microVM: EACCES even for
    // root), its namespace cannot be opened by that path either: refused as such
    let readable = true;
    try {
      fs.statSync(host);
    } catch (e) {
      readable = false;
      console.warn(
        `[hostns] ${host} is not readable here (${(e as NodeJS.ErrnoException).code}): refused as unopenable`,
      );
    }
    await expect(
      d.client.setup({ sandboxId: 'sb-host', netnsPath: host, cniResult: hostResult }),
    ).rejects.toMatchObject({
      code: 'EINVAL',
      field: 'netnsPath',
      message: expect.stringContaining(
        readable ? `"${host}": is the host's network namespace` : `"${host}": cannot be opened`,
      ),
    });

    expect(ipDump(home.pod)).toBe(before);
    expect(home.pod.exec('nft', ['list', 'tables'])).not.toContain('tapwire');
    expect(await d.client.list()).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'state', 'sandboxes'))).toEqual([]);

    // a pod's own namespace is still served
    const pod = makePod();
    const podBefore = await settledDump(pod.pod);
    await d.client.setup({ sandboxId: 'sb-pod', netnsPath: pod.pod.path, cniResult: pod.cniResult });
    expect(await d.client.teardown('sb-pod')).toEqual({ errors: [] });
    expect(ipDump(pod.pod)).toBe(podBefore);
    expect(ipDump(home.pod)).toBe(before);
    await stopDaemon(d);
  });

  it("refuses PID 1's netns: the daemon in a PID namespace of its own whose init sits in another throwaway netns", async () => {
    // PID 1 here is a shell in init.pod; the daemon (its child) runs in home.pod. A missing
    // check would take init.pod for a pod: it is pod-shaped, so the setup would go through.
    const init = makePod();
    const home = makePod();
    const before = await settledDump(init.pod);
    const d = await startDaemon(dir, {
      wrap: [
        ...['ip', 'netns', 'exec', init.pod.name],
        ...['unshare', '--pid', '--kill-child', '--mount-proc'],
        ...['sh', '-c', `ip netns exec ${home.pod.name} "$0" "$@" & wait`],
      ],
    });
    await expect(
      d.client.setup({ sandboxId: 'sb-init', netnsPath: init.pod.path, cniResult: init.cniResult }),
    ).rejects.toMatchObject({
      code: 'EINVAL',
      field: 'netnsPath',
      message: expect.stringContaining(
        `"${init.pod.path}": is the host's network namespace (PID 1's) (/proc/1/ns/net)`,
      ),
    });
    expect(ipDump(init.pod)).toBe(before);
    expect(await d.client.list()).toEqual([]);
  });
});
