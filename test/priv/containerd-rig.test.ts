// The containerd rig itself (test/fixtures/containerd): it starts on a machine where
// containerd never ran, serves the CRI with its own images and CNI network, runs a pod with
// a busybox container in its own network namespace, and stop() leaves no process,
// namespace or directory behind.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { criClient, type CriClient } from '../fixtures/cni/cri-harness';
import { BUSYBOX_IMAGES } from '../../src/demo/containerd/images';
import { POD_SUBNET, startContainerd, type Containerd } from '../../src/demo/containerd/rig';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const missing = requireTools('containerd', 'containerd-shim-runc-v2', 'runc', 'ctr', 'gcc', 'unshare');

function inMountNs(ns: string): string[] {
  return fs.readdirSync('/proc').filter((p) => {
    try {
      return /^\d+$/.test(p) && fs.readlinkSync(`/proc/${p}/ns/mnt`) === ns;
    } catch {
      return false;
    }
  });
}

async function expectStopRemovesAll(rig: Containerd): Promise<void> {
  const ns = rig.mountNs;
  const runc = fs.readdirSync(`${rig.dir}/runc/k8s.io`);
  expect(runc.length).toBeGreaterThan(0); // the pods' containers
  const pause = runc.map(
    (id) => JSON.parse(fs.readFileSync(`${rig.dir}/runc/k8s.io/${id}/state.json`, 'utf8')).init_process_pid as number,
  );
  await rig.stop();
  expect(fs.existsSync(rig.dir)).toBe(false);
  expect(inMountNs(ns)).toEqual([]);
  expect(pause.filter((p) => fs.existsSync(`/proc/${p}`))).toEqual([]);
}

describePrivileged('containerd rig', () => {
  let rig: Containerd | undefined;
  let client: CriClient | undefined;

  beforeAll(async () => {
    if (missing) {
      if (inCI) throw new Error(missing);
      return;
    }
    rig = await startContainerd({ label: 'rig' });
    client = criClient(rig.socket);
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await rig?.stop();
  }, 120_000);

  it('runs a pod with a busybox container, and stop() removes everything', async (ctx) => {
    if (!rig || !client) return ctx.skip(missing ?? 'no rig');
    const rt = client.runtime;
    const config = {
      metadata: { name: 'rig-pod', uid: 'rig-pod-uid', namespace: 'default', attempt: 0 },
      linux: {},
      log_directory: `${rig.dir}/logs`,
    };
    const { podSandboxId } = await rt.RunPodSandbox!({ config });
    const pod = await rt.PodSandboxStatus!({ podSandboxId, verbose: true });
    expect(pod.status.state).toBe('SANDBOX_READY');
    const ip = pod.status.network.ip as string;
    expect(ip.startsWith(POD_SUBNET.split('.').slice(0, 3).join('.'))).toBe(true);
    // the pod network's bridge is the rig's, not the host's
    const [cmd, args] = rig.inNamespace('ip', ['-4', '-o', 'addr', 'show', 'dev', 'cni0']);
    expect(execFileSync(cmd, args, { encoding: 'utf8' })).toContain('10.88.0.1/24');
    expect(fs.readlinkSync(`/proc/${rig.pid}/ns/net`)).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
    const { containerId } = await rt.CreateContainer!({
      podSandboxId,
      config: {
        metadata: { name: 'c', attempt: 0 },
        image: { image: BUSYBOX_IMAGES[0] },
        command: ['sleep', '3600'],
        linux: {},
        logPath: 'c.log',
      },
      sandboxConfig: config,
    });
    await rt.StartContainer!({ containerId });
    const out = await rt.ExecSync!({
      containerId,
      cmd: ['sh', '-c', 'ip -4 -o addr show eth0; pgrep sleep'],
      timeout: 10,
    });
    expect(out.exitCode).toBe(0);
    const text = Buffer.from(out.stdout).toString();
    expect(text).toContain(`inet ${ip}/24`);
    expect(text).toMatch(/^\d+$/m); // pgrep's stand-in found sleep

    client.close();
    client = undefined;
    const r = rig;
    rig = undefined;
    await expectStopRemovesAll(r);
  });

  it('stop() removes the pods of a containerd that was killed', async (ctx) => {
    if (missing) return ctx.skip(missing);
    rig = await startContainerd({ label: 'kill' });
    const c = criClient(rig.socket);
    const config = { metadata: { name: 'kill-pod', uid: 'kill-pod-uid', namespace: 'default', attempt: 0 }, linux: {} };
    await c.runtime.RunPodSandbox!({ config });
    c.close();
    process.kill(rig.pid, 'SIGKILL');
    const r = rig;
    rig = undefined;
    await expectStopRemovesAll(r);
  });
});
