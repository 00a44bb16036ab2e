// VM pods through tapwire-cri --backend with real parts: containerd 1.6 in the test's rig,
// the real tapmanager daemon, the proxy binary. A pod with RuntimeClass handler `tapwire`
// gets its sandbox from containerd (with runc) and tapwire's topology in its netns (br0,
// tap0; eth0 without its address); its container sees TAPWIRE_NET_KEY and the fd socket;
// stop tears tapwire down before containerd's CNI DEL and remove leaves no pin or record; a
// plain pod next to it never reaches tapmanager; a setup that fails (tapmanager gone)
// leaves no sandbox in containerd.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BUSYBOX_IMAGES } from '../../src/demo/containerd/images';
import { startVmProxy, VM_PROXY_MISSING, type VmProxy } from '../fixtures/containerd/vm-proxy';
import { killDaemons } from '../helpers/daemon';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('VM pods through tapwire-cri --backend containerd', () => {
  let vm: VmProxy | undefined;
  beforeAll(async () => {
    vm = await startVmProxy('vm');
  }, 120_000);
  afterAll(() => vm?.stop(), 120_000);

  it('runs a VM pod: containerd makes the sandbox, tapwire its topology; stop and remove undo it', async (ctx) => {
    if (!vm?.tap) return ctx.skip(VM_PROXY_MISSING ?? 'no rig');
    const rt = vm.client.runtime;
    const config = vm.podConfig('vm1');
    const { podSandboxId: id } = await rt.RunPodSandbox!({ config, runtimeHandler: 'tapwire' });
    // containerd has it with its default handler and the mark
    const [pod] = (await vm.direct.runtime.ListPodSandbox!({ filter: { id } })).items;
    expect(pod).toMatchObject({ runtimeHandler: '', annotations: { 'tapwire.io/vm-pod': 'true' } });
    const pin = path.join(vm.tmp, 'proxy-netns', id);
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
      cmd: ['sh', '-c', `env; ls ${path.dirname(vm.fdSocket)}`],
      timeout: 10,
    });
    const text = Buffer.from(out.stdout).toString();
    expect(text).toContain(`TAPWIRE_NET_KEY=${mine.netKey}`);
    expect(text).toContain(`TAPWIRE_FD_SOCKET=${vm.fdSocket}`);
    expect(text).toMatch(/^fd\.sock$/m);
    expect((await vm.tap.client.list()).map((s) => (s as { sandboxId: string }).sandboxId)).toContain(id);

    await rt.StopPodSandbox!({ podSandboxId: id });
    expect((await vm.tap.client.list()).map((s) => (s as { sandboxId: string }).sandboxId)).not.toContain(id);
    expect(fs.existsSync(pin)).toBe(false);
    await rt.RemovePodSandbox!({ podSandboxId: id });
    expect((await vm.direct.runtime.ListPodSandbox!({ filter: { id } })).items).toEqual([]);
    expect(fs.readdirSync(path.join(vm.tmp, 'proxy-state', 'vm-pods'))).toEqual([]);
  });

  it('a plain pod next to it never reaches tapmanager', async (ctx) => {
    if (!vm?.tap) return ctx.skip(VM_PROXY_MISSING ?? 'no rig');
    const { podSandboxId: id } = await vm.client.runtime.RunPodSandbox!({ config: vm.podConfig('plain1') });
    expect(await vm.tap.client.list()).toEqual([]);
    await vm.client.runtime.StopPodSandbox!({ podSandboxId: id });
    await vm.client.runtime.RemovePodSandbox!({ podSandboxId: id });
  });

  it("a pod whose request carries the proxy's vm-pod mark is refused: never a VM pod, never in containerd", async (ctx) => {
    if (!vm?.tap) return ctx.skip(VM_PROXY_MISSING ?? 'no rig');
    const before = (await vm.direct.runtime.ListPodSandbox!({})).items.length;
    const config = { ...vm.podConfig('forged1'), annotations: { 'tapwire.io/vm-pod': 'true' } };
    await expect(vm.client.runtime.RunPodSandbox!({ config })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringContaining('"tapwire.io/vm-pod"'),
    });
    expect((await vm.direct.runtime.ListPodSandbox!({})).items.length).toBe(before);
    expect(await vm.tap.client.list()).toEqual([]);
  });

  it('a VM pod whose setup fails leaves no sandbox in containerd', async (ctx) => {
    if (!vm?.tap) return ctx.skip(VM_PROXY_MISSING ?? 'no rig');
    const before = (await vm.direct.runtime.ListPodSandbox!({})).items.length;
    await killDaemons(); // tapmanager gone
    vm.tap = undefined;
    await expect(
      vm.client.runtime.RunPodSandbox!({ config: vm.podConfig('vm2'), runtimeHandler: 'tapwire' }),
    ).rejects.toMatchObject({
      code: status.UNAVAILABLE,
    });
    expect((await vm.direct.runtime.ListPodSandbox!({})).items.length).toBe(before);
    expect(fs.readdirSync(path.join(vm.tmp, 'proxy-netns')).length).toBe(0);
  });
});
