// VM pods through tapwire-cri --backend with real parts: containerd 1.6 in the test's rig,
// the real tapmanager daemon, the proxy binary. A pod with RuntimeClass handler `tapwire`
// gets its sandbox from containerd (with runc) and tapwire's topology in its netns (br0,
// tap0; eth0 without its address); its container sees TAPWIRE_NET_KEY and the fd socket;
// stop tears tapwire down before containerd's CNI DEL and remove leaves no pin or record; a
// plain pod next to it never reaches tapmanager; a setup that fails (tapmanager gone)
// leaves no sandbox in containerd.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mountState } from '../../src/cri/netns';
import { criClient, type CriClient } from '../fixtures/cni/cri-harness';
import { BUSYBOX_IMAGES } from '../../src/demo/containerd/images';
import { CRI_BIN, startProxy, type ProxyProc } from '../fixtures/containerd/proxy-proc';
import { startContainerd, type Containerd } from '../../src/demo/containerd/rig';
import { killDaemons, startDaemon, type Daemon } from '../helpers/daemon';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const missing =
  requireTools('containerd', 'containerd-shim-runc-v2', 'runc', 'ctr', 'gcc', 'unshare', 'nsenter') ??
  (fs.existsSync(CRI_BIN) ? undefined : `${CRI_BIN} is not built (npm run build)`);

function umount(p: string): void {
  try {
    execFileSync('umount', ['--lazy', p], { stdio: 'ignore' });
  } catch {
    /* not mounted */
  }
}

describePrivileged('VM pods through tapwire-cri --backend containerd', () => {
  let tmp: string;
  let rig: Containerd | undefined;
  let tap: Daemon | undefined;
  let proxy: ProxyProc | undefined;
  let client: CriClient | undefined;
  let direct: CriClient | undefined;
  let fdSocket: string;

  beforeAll(async () => {
    if (missing) {
      if (inCI) throw new Error(missing);
      return;
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-proxyvm-'));
    rig = await startContainerd({ label: 'vm' });
    fdSocket = path.join(tmp, 'tapmanager', 'fd', 'fd.sock');
    tap = await startDaemon(path.join(tmp, 'tapmanager'), { args: ['--fd-socket', fdSocket] });
    proxy = await startProxy(path.join(tmp, 'cri.sock'), `unix://${rig.socket}`, [
      '--tapmanager-socket',
      tap.controlSocket,
      '--fd-socket',
      fdSocket,
    ]);
    client = criClient(proxy.socket);
    direct = criClient(rig.socket);
  }, 120_000);

  afterAll(async () => {
    client?.close();
    direct?.close();
    await proxy?.stop();
    await rig?.stop();
    await killDaemons();
    if (tmp) {
      const pins = path.join(tmp, 'proxy-netns');
      for (const f of fs.existsSync(pins) ? fs.readdirSync(pins) : []) umount(path.join(pins, f));
      while (fs.existsSync(pins) && mountState(pins) !== 'none') umount(pins);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);

  const podConfig = (name: string) => ({
    metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 },
    linux: {},
    logDirectory: path.join(tmp, 'logs', name),
  });

  it('runs a VM pod: containerd makes the sandbox, tapwire its topology; stop and remove undo it', async (ctx) => {
    if (!client || !rig || !tap) return ctx.skip(missing ?? 'no rig');
    const rt = client.runtime;
    const config = podConfig('vm1');
    const { podSandboxId: id } = await rt.RunPodSandbox!({ config, runtimeHandler: 'tapwire' });
    // containerd has it with its default handler and the mark
    const [pod] = (await direct!.runtime.ListPodSandbox!({ filter: { id } })).items;
    expect(pod).toMatchObject({ runtimeHandler: '', annotations: { 'tapwire.io/vm-pod': 'true' } });
    const pin = path.join(tmp, 'proxy-netns', id);
    const links = execFileSync('nsenter', [`--net=${pin}`, 'ip', '-o', 'link'], { encoding: 'utf8' });
    expect(links).toMatch(/ br0: /);
    expect(links).toMatch(/ tap0: /);
    expect(
      execFileSync('nsenter', [`--net=${pin}`, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }),
    ).toBe('');
    const st = await rt.PodSandboxStatus!({ podSandboxId: id, verbose: true });
    const mine = JSON.parse(st.info.tapwire) as { netKey: string; netnsPath: string };
    expect(mine.netnsPath).toBe(pin);
    expect(st.status.network.ip).toMatch(/^10\.88\.0\./);

    const { containerId } = await rt.CreateContainer!({
      podSandboxId: id,
      config: {
        metadata: { name: 'vm' },
        image: { image: BUSYBOX_IMAGES[0] },
        command: ['sleep', '3600'],
        linux: {},
        logPath: 'vm.log',
      },
      sandboxConfig: config,
    });
    await rt.StartContainer!({ containerId });
    const out = await rt.ExecSync!({
      containerId,
      cmd: ['sh', '-c', `env; ls ${path.dirname(fdSocket)}`],
      timeout: 10,
    });
    const text = Buffer.from(out.stdout).toString();
    expect(text).toContain(`TAPWIRE_NET_KEY=${mine.netKey}`);
    expect(text).toContain(`TAPWIRE_FD_SOCKET=${fdSocket}`);
    expect(text).toMatch(/^fd\.sock$/m);
    expect((await tap.client.list()).map((s) => (s as { sandboxId: string }).sandboxId)).toContain(id);

    await rt.StopPodSandbox!({ podSandboxId: id });
    expect((await tap.client.list()).map((s) => (s as { sandboxId: string }).sandboxId)).not.toContain(id);
    expect(fs.existsSync(pin)).toBe(false);
    await rt.RemovePodSandbox!({ podSandboxId: id });
    expect((await direct!.runtime.ListPodSandbox!({ filter: { id } })).items).toEqual([]);
    expect(fs.readdirSync(path.join(tmp, 'proxy-state', 'vm-pods'))).toEqual([]);
  });

  it('a plain pod next to it never reaches tapmanager', async (ctx) => {
    if (!client || !tap) return ctx.skip(missing ?? 'no rig');
    const { podSandboxId: id } = await client.runtime.RunPodSandbox!({ config: podConfig('plain1') });
    expect(await tap.client.list()).toEqual([]);
    await client.runtime.StopPodSandbox!({ podSandboxId: id });
    await client.runtime.RemovePodSandbox!({ podSandboxId: id });
  });

  it("a pod whose request carries the proxy's vm-pod mark is refused: never a VM pod, never in containerd", async (ctx) => {
    if (!client || !tap) return ctx.skip(missing ?? 'no rig');
    const before = (await direct!.runtime.ListPodSandbox!({})).items.length;
    const config = { ...podConfig('forged1'), annotations: { 'tapwire.io/vm-pod': 'true' } };
    await expect(client.runtime.RunPodSandbox!({ config })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringContaining('"tapwire.io/vm-pod"'),
    });
    expect((await direct!.runtime.ListPodSandbox!({})).items.length).toBe(before);
    expect(await tap.client.list()).toEqual([]);
  });

  it('a VM pod whose setup fails leaves no sandbox in containerd', async (ctx) => {
    if (!client || !tap || !rig) return ctx.skip(missing ?? 'no rig');
    const before = (await direct!.runtime.ListPodSandbox!({})).items.length;
    await killDaemons(); // tapmanager gone
    tap = undefined;
    await expect(
      client.runtime.RunPodSandbox!({ config: podConfig('vm2'), runtimeHandler: 'tapwire' }),
    ).rejects.toMatchObject({
      code: status.UNAVAILABLE,
    });
    expect((await direct!.runtime.ListPodSandbox!({})).items.length).toBe(before);
    expect(fs.readdirSync(path.join(tmp, 'proxy-netns')).length).toBe(0);
  });
});
