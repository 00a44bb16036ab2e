// The demo with containerd, the shape a kubelet uses (the default when containerd is
// installed): a containerd of the demo's own (containerd/rig.ts: its own mount, IPC and
// network namespaces, the bundled pod network's subnet, a pause image and the VM image built
// here and imported), tapmanager, and tapwire-cri --backend in front of containerd. A pod
// with the RuntimeClass handler `tapwire` is a VM pod: containerd makes its sandbox and runs
// CNI, tapwire moves the pod's network to a tap; its container runs vmwrapper, which execs
// QEMU inside the container. Then stop and remove, and a check that nothing is left.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mountState } from '../cri/netns';
import { ensureGuest } from '../guest';
import { startContainerd, type Containerd } from './containerd/rig';
import { vmImage } from './containerd/vm-image';
import { runtimeClient } from './cri-client';
import { DemoPod, nothingLeftStep, tapctl, versionStep } from './cri-steps';
import type { GuestRun } from './guest';
import { bootGuestInPod } from './pod-guest';
import { Daemon, startDaemon } from './procs';
import type { Steps } from './steps';

export interface DemoContext {
  steps: Steps;
  /** the demo's own directory (removed at the end) */
  work: string;
  /** the checkout, and its dist/src */
  root: string;
  dist: string;
  /** something to undo on the way out (in reverse order) */
  undo(what: string, fn: () => unknown): void;
  sh(cmd: string, args: string[]): string;
  /** prints the guest's report and lease */
  showGuest(run: GuestRun): void;
}

/** The bundled CNI config's subnet (deploy/cni/10-tapwire.conflist), for the same addresses in both demos. */
const POD_SUBNET = '10.250.0.0/24';

export async function proxyDemo(c: DemoContext): Promise<boolean> {
  const { steps, work } = c;
  const sock = {
    control: path.join(work, 'tapmanager', 'control.sock'),
    // in a directory of its own: tapwire-cri mounts it into VM containers
    fd: path.join(work, 'tapmanager', 'fd', 'fd.sock'),
    cri: path.join(work, 'cri.sock'),
  };
  const netnsDir = path.join(work, 'netns');
  const vmPods = path.join(work, 'cri', 'vm-pods');
  fs.mkdirSync(path.dirname(sock.fd), { recursive: true });

  let rig: Containerd | undefined;
  await steps.run(
    'start a containerd of its own (own namespaces; pause and VM images built from local files and imported)',
    async () => {
      const guest = await ensureGuest();
      rig = await startContainerd({
        label: 'demo',
        podSubnet: POD_SUBNET,
        images: () => [vmImage({ repo: c.root, guest })],
      });
      c.undo('stop containerd and remove its pods', () => rig?.stop());
      steps.show(`containerd on ${rig.socket}`);
      steps.show(
        `VM image: ${(await rig.ctr('images', 'ls', '-q'))
          .split('\n')
          .filter((n) => n.includes('vm'))
          .join(' ')}`,
      );
      steps.show('  entrypoint vmwrapper (node + tapwire), QEMU with its libraries and firmware, the guest kernel');
    },
  );

  const daemons: Daemon[] = [];
  c.undo('stop daemons', () => Promise.all(daemons.map((d) => d.stop())));
  await steps.run('start tapmanager (root daemon: control socket 0600, fd socket for vmwrapper)', async () => {
    daemons.push(
      await startDaemon(
        'tapmanager',
        path.join(c.dist, 'tapmanager', 'main.js'),
        [
          '--state-dir', path.join(work, 'tapmanager', 'state'),
          '--control-socket', sock.control,
          '--fd-socket', sock.fd,
        ], // prettier-ignore
        sock.control,
        path.join(work, 'tapmanager.log'),
      ),
    );
  });

  await steps.run(
    'start tapwire-cri --backend (a CRI proxy in front of containerd: the kubelet endpoint)',
    async () => {
      daemons.push(
        await startDaemon(
          'tapwire-cri',
          path.join(c.dist, 'cri', 'main.js'),
          [
          '--backend', `unix://${rig!.socket}`,
          '--listen', sock.cri,
          '--state-dir', path.join(work, 'cri'),
          '--netns-dir', netnsDir,
          '--tapmanager-socket', sock.control,
          '--fd-socket', sock.fd,
        ], // prettier-ignore
          sock.cri,
          path.join(work, 'tapwire-cri.log'),
        ),
      );
      c.undo(`unmount ${netnsDir}`, () => {
        for (const f of fs.existsSync(netnsDir) ? fs.readdirSync(netnsDir) : []) {
          try {
            c.sh('umount', ['--lazy', path.join(netnsDir, f)]);
          } catch {
            /* not mounted */
          }
        }
        for (let i = 0; i < 4 && mountState(netnsDir) !== 'none'; i++) c.sh('umount', ['--lazy', netnsDir]);
      });
    },
  );

  const client = runtimeClient(sock.cri);
  c.undo('close the CRI client', () => client.close());
  const rt = client.rt;

  await versionStep(c, rt, 'CRI Version and Status through tapwire-cri (answered by containerd)');

  const podName = 'demo-vm';
  const sandboxConfig = {
    metadata: { name: podName, namespace: 'default', uid: randomBytes(8).toString('hex'), attempt: 0 },
    hostname: podName,
    labels: { app: 'tapwire-demo' },
    dnsConfig: { servers: ['10.250.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] },
    logDirectory: path.join(work, 'logs'),
    linux: {},
  };
  const pod = new DemoPod(c, rt);
  await steps.run(
    'RunPodSandbox with RuntimeClass handler tapwire (containerd: netns, CNI ADD; tapwire: tapmanager setup)',
    async () => {
      pod.made((await rt.RunPodSandbox!({ config: sandboxConfig, runtimeHandler: 'tapwire' })).podSandboxId as string);
    },
  );
  const sandboxId = pod.id;

  await steps.run("PodSandboxStatus (verbose: containerd's status plus tapwire's)", async () => {
    const st = await rt.PodSandboxStatus!({ podSandboxId: sandboxId, verbose: true });
    const mine = JSON.parse(st.info?.tapwire ?? '{}') as { netKey?: string; netnsPath?: string };
    if (!mine.netKey)
      throw new Error('PodSandboxStatus verbose has no tapwire netKey: tapmanager setup did not complete');
    const s = st.status;
    steps.show(`state ${s.state}  pod ${s.metadata.namespace}/${s.metadata.name}  ip ${s.network?.ip}`);
    steps.show(`tapwire: netns ${mine.netnsPath}  TAPWIRE_NET_KEY=${mine.netKey.replace(/:.*/, ':<token>')}`);
  });

  await steps.run(`tapctl describe ${sandboxId}`, () => steps.show(tapctl(c, sock.control, 'describe', sandboxId)));

  let ok = false;
  await steps.run(
    'CreateContainer + StartContainer with the VM image: vmwrapper fetches the tap fd and execs QEMU (TCG) in the container',
    async () => {
      const run = await bootGuestInPod({ rt, sandboxId, sandboxConfig, timeoutMs: 150_000 });
      steps.show(`container ${run.containerId}; the guest's console is the container's log`);
      c.showGuest(run);
      ok = run.ok;
    },
  );

  await pod.removeStep('StopPodSandbox and RemovePodSandbox (tapmanager teardown, then containerd: CNI DEL)');
  await nothingLeftStep(c, rt, {
    control: sock.control,
    netnsDir,
    more: () => [
      { what: 'tapwire-cri VM pod records', count: fs.existsSync(vmPods) ? fs.readdirSync(vmPods).length : 0 },
    ],
  });
  return ok;
}
