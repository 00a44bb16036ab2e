// The container image of deploy/kubernetes, built for real without a registry or a base
// image (scripts/image.sh: Debian 12 by debootstrap, node 20, deploy/kubernetes/image-packages,
// this checkout's .deb installed; the base cached under /var/cache/tapwire/image), imported
// into containerd (a rig of its own, src/demo/containerd/rig.ts) with `ctr images import`,
// and run as the DaemonSet runs it: a privileged host-network container whose command is
// tapmanager, its sockets and state in a host directory mounted in, the pods' network
// namespaces mounted in. From the host, a client sets up a sandbox through the container's
// control socket: it is built in the pod's namespace (the tap and its bridge there), and
// its teardown leaves the pod as it was.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { startContainerd, type Containerd } from '../../src/demo/containerd/rig';
import { TapmanagerClient } from '../../src/tapmanager/client';
import { settledDump } from '../helpers/ip-dump';
import { removeAllNetns } from '../helpers/netns';
import { makePod, podState } from '../helpers/pod';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const ROOT = path.resolve(__dirname, '../..');

async function waitForFile(file: string, ms: number, why: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!fs.existsSync(file)) {
    if (Date.now() > end) throw new Error(`${file} did not appear in ${ms} ms: ${why()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describePrivileged('the container image', () => {
  const noTools = requireTools('debootstrap', 'dpkg-repack', 'containerd', 'runc', 'ctr', 'chroot');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-img-'));
  const mounted: string[] = [];
  let rig: Containerd | undefined;
  afterAll(async () => {
    await rig?.stop();
    for (const m of mounted) execFileSync('umount', ['-l', m]);
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('builds offline, imports into containerd, and its tapmanager serves a sandbox from a container', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const tar = path.join(dir, 'image.tar');
    const name = `localhost/tapwire:test-${process.pid}`;
    const out = execFileSync('bash', [path.join(ROOT, 'scripts/image.sh'), tar, name], {
      encoding: 'utf8',
      timeout: 1_200_000,
    });
    expect(out.trim().split('\n').pop()).toBe(name);

    // the pod's namespace, mounted where the container will see it (before the rig starts:
    // its mount namespace is a copy of the host's at that time)
    const pod = makePod();
    const nsDir = path.join(dir, 'netns');
    fs.mkdirSync(nsDir);
    fs.writeFileSync(path.join(nsDir, 'pod'), '');
    execFileSync('mount', ['--bind', pod.pod.path, path.join(nsDir, 'pod')]);
    mounted.push(path.join(nsDir, 'pod'));
    const runDir = path.join(dir, 'run');
    fs.mkdirSync(runDir);

    rig = await startContainerd({ label: 'img' });
    await rig.ctr('images', 'import', tar);
    expect(await rig.ctr('images', 'ls', '-q')).toContain(name);
    const logFile = path.join(dir, 'tapmanager.log');
    await rig.ctr(
      'run',
      '-d',
      '--net-host',
      '--privileged',
      '--log-uri',
      `file://${logFile}`,
      '--mount',
      `type=bind,src=${runDir},dst=/run/tapwire,options=rbind:rw`,
      '--mount',
      `type=bind,src=${nsDir},dst=/run/twt-netns,options=rbind:rw`,
      name,
      `twt-img-${process.pid}`,
      'tapmanager',
      '--state-dir',
      '/run/tapwire/state',
      '--control-socket',
      '/run/tapwire/control.sock',
      '--fd-socket',
      '/run/tapwire/fd.sock',
    );
    const log = (): string => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '(no log)');
    await waitForFile(path.join(runDir, 'control.sock'), 60_000, log);
    await settledDump(pod.pod);
    const before = podState(pod.pod);

    const client = new TapmanagerClient(path.join(runDir, 'control.sock'), 30_000);
    try {
      const netnsPath = '/run/twt-netns/pod'; // the pod's namespace as the container sees it
      const cniResult = {
        ...pod.cniResult,
        interfaces: pod.cniResult.interfaces!.map((i) => (i.sandbox ? { ...i, sandbox: netnsPath } : i)),
      };
      await client.setup({ sandboxId: 'sb-img', netnsPath, cniResult });
      const status = (await client.status('sb-img')) as { state: string; drift: string[]; nics: { tap?: string }[] };
      expect(status, log()).toMatchObject({ state: 'ready', drift: [] });
      const links = pod.pod.exec('ip', ['-o', 'link', 'show']);
      expect(links).toMatch(/: tap\S*[:@]/);
      expect(links).toMatch(/ master /);
      expect((await client.teardown('sb-img')).errors).toEqual([]);
    } finally {
      client.close();
    }
    await settledDump(pod.pod);
    expect(podState(pod.pod)).toBe(before);
    expect(log()).toContain('"msg":"ready"');
    await rig.ctr('task', 'kill', '-s', 'SIGTERM', `twt-img-${process.pid}`);
  }, 1_500_000);
});
