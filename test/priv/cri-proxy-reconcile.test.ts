// Restart reconciliation of tapwire-cri --backend with real parts (containerd 1.6 in the
// test's rig, the real tapmanager, the proxy binary): the proxy is killed, containerd or
// tapmanager is changed behind its back (straight at containerd's socket, as crictl would),
// and the restarted proxy brings both sides together: a VM pod containerd stopped is torn
// down, one containerd removed is torn down and forgotten, a tapmanager record of a sandbox
// containerd does not have is torn down, a VM pod tapmanager lost is set up again, and one
// that cannot be is reported in its PodSandboxStatus. Each with a log line.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fetchFds } from '../../src/vmwrapper/fetch';
import { BUSYBOX_IMAGES } from '../../src/demo/containerd/images';
import { startVmProxy, VM_PROXY_MISSING, type VmProxy } from '../fixtures/containerd/vm-proxy';
import { stopDaemon } from '../helpers/daemon';
import { describePrivileged } from '../helpers/privileged';

/** Polls until check() holds (the restarted proxy reconciles in the background). */
async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  for (const end = Date.now() + 60_000; !(await check());) {
    if (Date.now() > end) throw new Error(`still not: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describePrivileged('tapwire-cri --backend reconciles VM pods at restart', () => {
  let vm: VmProxy | undefined;
  beforeAll(async () => {
    vm = await startVmProxy('rec');
  }, 120_000);
  afterAll(() => vm?.stop(), 120_000);
  const tapIds = async (): Promise<string[]> =>
    (await vm!.tap!.client.list()).map((s) => (s as { sandboxId: string }).sandboxId);
  const recordFile = (id: string) => path.join(vm!.tmp, 'proxy-state', 'vm-pods', `${id}.json`);
  async function vmPod(name: string): Promise<string> {
    const { podSandboxId } = await vm!.client.runtime.RunPodSandbox!({
      config: vm!.podConfig(name),
      runtimeHandler: 'tapwire',
    });
    expect(await tapIds()).toContain(podSandboxId);
    return podSandboxId;
  }

  it('a VM pod containerd stopped, then removed, behind its back is torn down, then forgotten', async (ctx) => {
    if (!vm?.tap) return ctx.skip(VM_PROXY_MISSING ?? 'no rig');
    const id = await vmPod('rec-stopped');
    await vm.killProxy();
    await vm.direct.runtime.StopPodSandbox!({ podSandboxId: id });
    let log = await vm.restartProxy();
    await until('the log says it is done', () =>
      log().includes('VM pod stopped in the backend with tapwire still set up'),
    );
    expect(await tapIds()).not.toContain(id);
    expect(fs.existsSync(vm.pin(id))).toBe(false);
    expect(fs.existsSync(recordFile(id))).toBe(true); // still a VM pod until it is removed

    await vm.killProxy();
    await vm.direct.runtime.RemovePodSandbox!({ podSandboxId: id });
    log = await vm.restartProxy();
    await until('the log says it is done', () => log().includes('VM pod gone from the backend'));
    expect(fs.existsSync(recordFile(id))).toBe(false);
    expect(await tapIds()).not.toContain(id);
  });

  it('a VM pod containerd removed while running is torn down and forgotten', async (ctx) => {
    if (!vm?.tap) return ctx.skip(VM_PROXY_MISSING ?? 'no rig');
    const id = await vmPod('rec-removed');
    await vm.killProxy();
    await vm.direct.runtime.StopPodSandbox!({ podSandboxId: id });
    await vm.direct.runtime.RemovePodSandbox!({ podSandboxId: id });
    const log = await vm.restartProxy();
    await until('the log says it is done', () => log().includes('VM pod gone from the backend'));
    expect(fs.existsSync(recordFile(id))).toBe(false);
    expect(await tapIds()).not.toContain(id);
    expect(fs.existsSync(vm.pin(id))).toBe(false);
  });

  it('a tapmanager record of a sandbox containerd does not have (and the proxy forgot) is torn down', async (ctx) => {
    if (!vm?.tap) return ctx.skip(VM_PROXY_MISSING ?? 'no rig');
    const id = await vmPod('rec-orphan');
    await vm.killProxy();
    fs.rmSync(recordFile(id));
    await vm.direct.runtime.StopPodSandbox!({ podSandboxId: id });
    await vm.direct.runtime.RemovePodSandbox!({ podSandboxId: id });
    const log = await vm.restartProxy();
    await until('the log says it is done', () => log().includes('tapmanager record of no sandbox the backend has'));
    expect(await tapIds()).not.toContain(id);
    expect(fs.existsSync(vm.pin(id))).toBe(false);
  });

  it('a running VM pod tapmanager lost is set up again; one that cannot be says so in its status', async (ctx) => {
    if (!vm?.tap) return ctx.skip(VM_PROXY_MISSING ?? 'no rig');
    const id = await vmPod('rec-repair');
    const before = JSON.parse(fs.readFileSync(recordFile(id), 'utf8')) as { netKey: string };
    await vm.killProxy();
    await vm.tap.client.teardown(id);
    let log = await vm.restartProxy();
    await until('the log says it is done', () => log().includes('VM pod repaired'));
    expect(await tapIds()).toContain(id);
    const links = execFileSync('nsenter', [`--net=${vm.pin(id)}`, 'ip', '-o', 'link'], { encoding: 'utf8' });
    expect(links).toMatch(/ tap0: /);
    const st = await vm.client.runtime.PodSandboxStatus!({ podSandboxId: id, verbose: true });
    const mine = JSON.parse(st.info.tapwire) as { netKey: string; error?: string };
    expect(mine.error).toBeUndefined();
    expect(mine.netKey).not.toBe(before.netKey); // a new setup, a new key, kept for new containers
    expect(JSON.parse(fs.readFileSync(recordFile(id), 'utf8'))).toMatchObject({ netKey: mine.netKey });

    // lost again, and now the pod's address is gone too: the repair cannot be done
    await vm.killProxy();
    await vm.tap.client.teardown(id);
    execFileSync('nsenter', [`--net=${vm.pin(id)}`, 'ip', 'addr', 'flush', 'dev', 'eth0']);
    log = await vm.restartProxy();
    await until('the log says the repair failed', () => log().includes('VM pod repair failed'));
    const broken = await vm.client.runtime.PodSandboxStatus!({ podSandboxId: id });
    expect(JSON.parse(broken.info.tapwire)).toMatchObject({
      error: expect.stringContaining('tapwire could not set this VM pod up again'),
    });
    expect(await tapIds()).not.toContain(id);
    await vm.client.runtime.StopPodSandbox!({ podSandboxId: id });
    await vm.client.runtime.RemovePodSandbox!({ podSandboxId: id });
    expect(fs.existsSync(recordFile(id))).toBe(false);
  });

  it("a restart of tapwire-cri and of tapmanager between a VM pod's start and stop changes nothing", async (ctx) => {
    if (!vm?.tap) return ctx.skip(VM_PROXY_MISSING ?? 'no rig');
    const id = await vmPod('rec-restarts');
    const { netKey } = JSON.parse(fs.readFileSync(recordFile(id), 'utf8')) as { netKey: string };
    // links, addresses and routes in the pod's netns; without the carrier (tap0 has none while
    // no process holds it open: tapmanager holds it from setup, a restarted one only once asked)
    const view = () =>
      ['link', 'addr', 'route'].map((what) =>
        execFileSync('nsenter', [`--net=${vm!.pin(id)}`, 'ip', '-br', what], { encoding: 'utf8' })
          .split('\n')
          .map((l) => l.replace(/NO-CARRIER,/, '').split(/\s+/))
          .map((cols) => (what === 'route' ? cols : [cols[0], ...cols.slice(2)]).join(' ')),
      );
    const before = view();
    const reconciled = (log: () => string) => () => log().includes('"msg":"reconciled"');

    // tapwire-cri crashes, tapmanager stops and starts again, then tapwire-cri starts
    await vm.killProxy();
    await stopDaemon(vm.tap);
    vm.tap = await vm.startTapmanager();
    let log = await vm.restartProxy();
    await until('a reconciliation pass', reconciled(log));
    // tapwire-cri stops cleanly, tapmanager crashes and starts again, then tapwire-cri starts
    vm.client?.close();
    await vm.proxy.stop();
    vm.tap.child.kill('SIGKILL');
    await vm.tap.exited;
    vm.tap.client.close();
    vm.tap = await vm.startTapmanager();
    log = await vm.restartProxy();
    await until('a reconciliation pass', reconciled(log));

    expect(log()).toContain('"actions":0');
    expect(view()).toEqual(before);
    expect(await tapIds()).toContain(id);
    const st = await vm.client.runtime.PodSandboxStatus!({ podSandboxId: id, verbose: true });
    expect(JSON.parse(st.info.tapwire)).toMatchObject({ netKey, netnsPath: vm.pin(id) });
    const { containerId } = await vm.client.runtime.CreateContainer!({
      podSandboxId: id,
      config: {
        metadata: { name: 'vm' },
        image: { image: BUSYBOX_IMAGES[0] },
        command: ['sleep', '3600'],
        linux: {},
        logPath: 'vm.log',
      },
      sandboxConfig: vm.podConfig('rec-restarts'),
    });
    await vm.client.runtime.StartContainer!({ containerId });
    const out = await vm.client.runtime.ExecSync!({ containerId, cmd: ['env'], timeout: 10 });
    expect(Buffer.from(out.stdout).toString()).toContain(`TAPWIRE_NET_KEY=${netKey}`);
    const fetched = fetchFds(vm.fdSocket, netKey); // the key still opens the taps
    for (const fd of fetched.fds) fs.closeSync(fd);
    expect(fetched.sandboxId).toBe(id);

    await vm.client.runtime.StopPodSandbox!({ podSandboxId: id });
    expect(await tapIds()).not.toContain(id);
    expect(fs.existsSync(vm.pin(id))).toBe(false);
    await vm.client.runtime.RemovePodSandbox!({ podSandboxId: id });
    expect(fs.existsSync(recordFile(id))).toBe(false);
    expect((await vm.direct.runtime.ListPodSandbox!({ filter: { id } })).items).toEqual([]);
  });

  it('a crash between containerd making a VM pod and the record: the marked sandbox is adopted at restart', async (ctx) => {
    if (!vm?.tap) return ctx.skip(VM_PROXY_MISSING ?? 'no rig');
    const dns = { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] };
    const adoptConfig = { ...vm.podConfig('rec-adopt'), hostname: 'adopted-host', dnsConfig: dns };
    await vm.killProxy();
    await vm.restartProxy([], { TAPWIRE_TEST_CRASH_AFTER: 'proxy.run.created' });
    await expect(
      vm.client.runtime.RunPodSandbox!({ config: adoptConfig, runtimeHandler: 'tapwire' }),
    ).rejects.toMatchObject({ code: status.UNAVAILABLE });
    expect(await vm.proxy.stop()).toBe('SIGKILL');
    vm.client.close();
    const items = (await vm.direct.runtime.ListPodSandbox!({})).items as { id: string; metadata: { name: string } }[];
    const sb = items.find((i) => i.metadata.name === 'rec-adopt');
    expect(sb).toMatchObject({ state: 'SANDBOX_READY', annotations: { 'tapwire.io/vm-pod': 'true' } });
    const id = String(sb!.id);
    expect(fs.existsSync(recordFile(id))).toBe(false);
    expect(await tapIds()).not.toContain(id);

    const log = await vm.restartProxy();
    await until('the log says it is done', () => log().includes('VM pod adopted and set up'));
    expect(log()).toContain('sandbox marked as a VM pod without a record');
    expect(await tapIds()).toContain(id);
    const rec = JSON.parse(fs.readFileSync(recordFile(id), 'utf8')) as { netKey: string };
    // who the pod is, from containerd's status: as the RunPodSandbox that crashed would have set it up
    expect(rec).toMatchObject({
      id,
      pod: { podName: 'rec-adopt', podNamespace: 'default', hostname: 'adopted-host', dns },
    });
    const links = execFileSync('nsenter', [`--net=${vm.pin(id)}`, 'ip', '-o', 'link'], { encoding: 'utf8' });
    expect(links).toMatch(/ tap0: /);
    const st = await vm.client.runtime.PodSandboxStatus!({ podSandboxId: id, verbose: true });
    expect(JSON.parse(st.info.tapwire)).toMatchObject({ netKey: rec.netKey, netnsPath: vm.pin(id) });

    await vm.client.runtime.StopPodSandbox!({ podSandboxId: id });
    expect(await tapIds()).not.toContain(id);
    expect(fs.existsSync(vm.pin(id))).toBe(false);
    await vm.client.runtime.RemovePodSandbox!({ podSandboxId: id });
    expect(fs.existsSync(recordFile(id))).toBe(false);
  });

  // last: tapmanager is down for a while
  it('a stop with tapmanager gone fails, then goes ahead; tapwire is torn down once tapmanager is back', async (ctx) => {
    if (!vm?.tap) return ctx.skip(VM_PROXY_MISSING ?? 'no rig');
    const id = await vmPod('rec-stop-down');
    await vm.killProxy();
    const log = await vm.restartProxy([
      '--stop-teardown-attempts',
      '2',
      '--stop-teardown-grace',
      '0',
      '--reconcile-interval',
      '1',
    ]);
    await stopDaemon(vm.tap);
    const state = async () => (await vm!.direct.runtime.PodSandboxStatus!({ podSandboxId: id })).status.state;
    await expect(vm.client.runtime.StopPodSandbox!({ podSandboxId: id })).rejects.toMatchObject({
      code: status.UNAVAILABLE,
    });
    expect(await state()).toBe('SANDBOX_READY'); // containerd not asked yet: tapmanager may come back
    await vm.client.runtime.StopPodSandbox!({ podSandboxId: id });
    expect(await state()).toBe('SANDBOX_NOTREADY');
    expect(log()).toContain('tapmanager teardown keeps failing');
    expect(fs.existsSync(vm.pin(id))).toBe(true); // tapwire's topology is still in there
    expect(fs.existsSync(recordFile(id))).toBe(true);

    vm.tap = await vm.startTapmanager();
    await until('the log says it is done', () =>
      log().includes('VM pod stopped in the backend with tapwire still set up'),
    );
    expect(await tapIds()).not.toContain(id);
    expect(fs.existsSync(vm.pin(id))).toBe(false);
    await vm.client.runtime.RemovePodSandbox!({ podSandboxId: id });
    expect(fs.existsSync(recordFile(id))).toBe(false);
  });
});
