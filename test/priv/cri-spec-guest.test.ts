// The network spec's proof, end to end: tapwire-cri (standalone, in process) with the real
// CNI plugins and the real tapmanager daemon runs a pod whose annotation asks for three NICs
// (a custom-MAC NIC on the pod network, a NIC on a second network from a NAD file with its
// own bridge and host-local range, an L2-only NIC on an interface placed in the pod before
// tapmanager's setup, as a device plugin would), and tapwire's guest boots through vmwrapper
// on a real QEMU (TCG). The guest reports the NICs in spec order with the spec's MACs, a
// lease from tapmanager on each IP network and one from the L2 segment's own DHCP server (a
// peer on that segment: tapmanager serves none there), and pings each network's gateway and
// a peer pod on each IP network (a netns attached to the same two networks by CNI).
// Stop leaves the pod's interfaces byte for byte as tapmanager found them; Stop and Remove
// leave nothing. The same with autoattachPodInterface: false and no pod-network NIC.
// (The second NIC is virtio, not e1000: Debian's cloud kernel in the guest is built
// without e1000; vmwrapper's e1000 arguments are checked where it builds them.)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { CniRunner, loadNad, parseConfList } from '../../src/cni';
import { removePersistentNetns } from '../../src/cri/netns';
import { SandboxService } from '../../src/cri/sandboxes';
import { ensureGuest, guestCmdline, QEMU, qemuArgs, startGuest } from '../../src/guest';
import { NETWORK_SPEC_ANNOTATION } from '../../src/spec';
import type { TapmanagerApi } from '../../src/tapmanager/client';
import { waitFor } from '../fixtures/dhcp-net';
import { startDnsmasq, stopAll } from '../fixtures/fence/topology';
import { killDaemons, startDaemon, type Daemon } from '../helpers/daemon';
import { dadDone, settledDump } from '../helpers/ip-dump';
import { uniqueName } from '../helpers/names';
import { createNetns, removeAllNetns, TestNetns } from '../helpers/netns';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const ROOT = path.resolve(__dirname, '../..');
const SHIM = path.join(ROOT, 'deploy', 'libvirt', 'vmwrapper');
const PLUGINS = '/usr/lib/cni';
const missing =
  requireTools('nsenter', 'unshare', 'umount', 'dnsmasq', QEMU) ??
  (fs.existsSync(`${PLUGINS}/bridge`) ? undefined : `no ${PLUGINS}/bridge`);

describePrivileged('a guest with the NICs of a network spec (CRI -> CNI -> tapmanager -> vmwrapper -> QEMU)', () => {
  let tmp: string;
  let node: TestNetns;
  let peer: TestNetns;
  let daemon: Daemon;
  let n: number;
  /** the peer pod's addresses on the pod network and on blue */
  let peerIps: string[];
  const pinned: string[] = [];
  /** the pod netns as tapmanager found it at setup, and as it left it at teardown */
  const dumps: { before?: string; after?: string } = {};

  /** leases other than the peer pod's */
  const leases = () =>
    ['twnet', 'blue'].flatMap((net) => {
      const d = path.join(tmp, 'ipam', net);
      return fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.startsWith('10.') && !peerIps.includes(f)) : [];
    });
  const bridgeConf = (name: string, br: string, subnet: string, dst: string) => ({
    cniVersion: '1.0.0',
    name,
    plugins: [
      {
        type: 'bridge',
        bridge: br,
        isGateway: true,
        ipam: { type: 'host-local', subnet, dataDir: path.join(tmp, 'ipam'), routes: [{ dst }] },
      },
    ],
  });

  beforeAll(async () => {
    if (missing) {
      if (inCI) throw new Error(missing);
      return;
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-specguest-'));
    fs.chmodSync(tmp, 0o755);
    n = 100 + Math.floor(Math.random() * 100);
    node = createNetns('node');
    peer = createNetns('seg');
    fs.mkdirSync(path.join(tmp, 'net.d'));
    fs.writeFileSync(
      path.join(tmp, 'net.d', '10-twnet.conflist'),
      JSON.stringify(bridgeConf('twnet', 'cni0', `10.${n}.0.0/24`, '0.0.0.0/0')),
    );
    fs.mkdirSync(path.join(tmp, 'nads', 'default'), { recursive: true });
    fs.writeFileSync(
      path.join(tmp, 'nads', 'default', 'blue.yaml'),
      [
        'apiVersion: k8s.cni.cncf.io/v1',
        'kind: NetworkAttachmentDefinition',
        'metadata: {name: blue, namespace: default}',
        `spec: {config: '${JSON.stringify(bridgeConf('blue', 'br-blue', `10.${n}.1.0/24`, '10.200.0.0/16'))}'}`,
      ].join('\n'),
    );
    // a peer pod on both networks
    const peerPod = createNetns('peerpod');
    const cni = new CniRunner({ binDirs: [PLUGINS], hostNetns: node.path, cacheDir: path.join(tmp, 'peer-cache') });
    const a = {
      containerId: 'peerpod',
      netns: peerPod.path,
      pod: { podNamespace: 'default', podName: 'peer', infraContainerId: 'peerpod' },
    };
    const twnet = parseConfList(fs.readFileSync(path.join(tmp, 'net.d', '10-twnet.conflist'), 'utf8'));
    const r0 = await cni.add(twnet, { ...a, ifName: 'eth0' });
    const r1 = await cni.add(loadNad(path.join(tmp, 'nads'), { namespace: 'default', name: 'blue' }), {
      ...a,
      ifName: 'net1',
    });
    peerIps = [r0, r1].map((r) => r.ips![0]!.address.split('/')[0]!);
    daemon = await startDaemon(path.join(tmp, 'tapmanager'));
    await ensureGuest();
  }, 600_000);

  afterEach(async () => {
    await stopAll();
    for (const p of pinned.splice(0)) await removePersistentNetns(p).catch(() => {});
  });

  afterAll(async () => {
    await killDaemons();
    removeAllNetns();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** tapmanager, with a "device plugin" that puts seg0 (a veth to the peer's segment) into the pod first. */
  function tapmanager(): TapmanagerApi {
    const c = daemon.client;
    return {
      setup: async (req) => {
        const pod = new TestNetns(path.basename(req.netnsPath));
        peer.ip('link', 'add', 'seg0', 'type', 'veth', 'peer', 'name', 'segp');
        peer.ip('link', 'set', 'seg0', 'netns', req.netnsPath);
        pod.ip('link', 'set', 'seg0', 'up');
        peer.ip('addr', 'add', '192.168.77.1/24', 'dev', 'segp');
        peer.ip('link', 'set', 'segp', 'up');
        await dadDone(pod, ['seg0']); // carrier and link-local address settled: the state a device plugin leaves
        dumps.before = await settledDump(pod);
        return c.setup(req);
      },
      teardown: async (id) => {
        const netns = pinned.at(-1)!;
        const r = await c.teardown(id);
        if (fs.existsSync(netns)) dumps.after = await settledDump(new TestNetns(path.basename(netns)));
        return r;
      },
      status: (id) => c.status(id),
      list: () => c.list(),
    };
  }

  async function runPod(name: string, spec: unknown) {
    const sandboxes = new SandboxService({
      cniConfDir: path.join(tmp, 'net.d'),
      cniBinDirs: [PLUGINS],
      stateDir: path.join(tmp, 'cri'),
      netnsDir: '/run/netns',
      netnsName: () => {
        const nn = uniqueName('cri');
        pinned.push(`/run/netns/${nn}`);
        return nn;
      },
      cniHostNetns: node.path,
      networkAttachmentsDir: path.join(tmp, 'nads'),
      tapmanager: tapmanager(),
    });
    await sandboxes.start();
    const id = await sandboxes.run(
      {
        metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 },
        hostname: name,
        annotations: { [NETWORK_SPEC_ANNOTATION]: JSON.stringify(spec) },
      },
      '',
    );
    return { sandboxes, id };
  }

  async function boot(netKey: string, nics: number, peers: string[]) {
    const image = await ensureGuest();
    const work = path.join(tmp, `guest-${netKey.slice(0, 6)}`);
    fs.mkdirSync(work);
    const run = startGuest({
      command: SHIM,
      args: qemuArgs({
        kernel: image.kernel,
        initrd: image.initrd,
        append: guestCmdline({ dhcpTries: 20, ping: ['gw', ...peers] }),
        name: 'tapwire-spec',
        console: 'stdio',
      }),
      console: 'stdio',
      cwd: work,
      env: {
        PATH: '/usr/bin:/bin',
        TAPWIRE_NODE: process.execPath,
        TAPWIRE_NET_KEY: netKey,
        TAPWIRE_EMULATOR: QEMU,
        TAPWIRE_FD_SOCKET: daemon.fdSocket,
      },
      timeoutMs: 300_000,
      expect: { leases: nics, pings: nics + peers.length },
    });
    return run.result;
  }

  async function stopAndRemove(sandboxes: SandboxService, id: string) {
    await sandboxes.stop(id);
    await sandboxes.remove(id);
    expect(dumps.after).toBe(dumps.before); // every pod interface as tapmanager found it
    expect(await daemon.client.list()).toEqual([]);
    expect(leases()).toEqual([]);
    expect(fs.readdirSync(path.join(tmp, 'cri', 'cni-cache'))).toEqual([]);
    // only the peer pod's port is left on each bridge
    for (const br of ['br-blue', 'cni0']) {
      const ports = node.ip('-o', 'link', 'show', 'master', br).trim().split('\n');
      expect(ports).toEqual([expect.stringContaining('peerpod')]);
    }
    // went with the pod netns (the kernel frees a netns's links asynchronously)
    await waitFor('segp gone with the pod netns', () => !peer.ip('-o', 'link', 'show').includes('segp'));
  }

  const blueAndSeg = [
    { name: 'blue', model: 'virtio', bridge: {} },
    { name: 'seg', macAddress: '02:00:00:77:00:03', bridge: {} },
  ];
  const blueAndSegNets = [
    { name: 'blue', multus: { networkName: 'blue' } },
    { name: 'seg', l2: { interfaceName: 'seg0' } },
  ];

  it('three NICs in spec order: custom MAC on the pod network, a NAD network, an L2-only segment', async (ctx) => {
    if (missing) return ctx.skip(missing);
    const spec = {
      apiVersion: 'tapwire.io/v1alpha1',
      interfaces: [
        {
          name: 'default',
          macAddress: 'DE-AD-00-00-BE-AF',
          bridge: {},
          // taken by the real tapmanager into the NIC's lease (what a client sees of them: setup-perf's dhclient test)
          dhcpOptions: {
            bootFileName: 'pxelinux.0',
            tftpServerName: 'tftp.example',
            ntpServers: [`10.${n}.0.1`],
            privateOptions: [{ option: 240, value: 'hello' }],
          },
        },
        ...blueAndSeg,
      ],
      networks: [{ name: 'default', pod: {} }, ...blueAndSegNets],
    };
    const { sandboxes, id } = await runPod('spec3', spec);
    const dns = await startDnsmasq(peer, 'segp', tmp, 'seg', [
      '--dhcp-range=192.168.77.50,192.168.77.60,255.255.255.0,1h',
      '--dhcp-option=3,192.168.77.1',
    ]);
    const st = await sandboxes.status(id, true);
    const res = await boot(st.info.netKey!, 3, peerIps);
    const r = res.report;
    expect(res.verdict.problems).toEqual([]);
    const blueMac = (JSON.parse(st.info['k8s.v1.cni.cncf.io/network-status']!) as { mac: string }[])[1]!.mac;
    expect(r.nics.map((x) => x.mac)).toEqual(['de:ad:00:00:be:af', blueMac, '02:00:00:77:00:03']);
    const byNic = new Map(r.leases.map((l) => [l.nic, l]));
    const podIps = JSON.parse(st.info['k8s.v1.cni.cncf.io/network-status']!) as { ips: string[] }[];
    expect(byNic.get(r.nics[0]!.name)).toMatchObject({ ip: podIps[0]!.ips[0], router: [`10.${n}.0.1`] });
    expect(byNic.get(r.nics[1]!.name)).toMatchObject({ ip: podIps[1]!.ips[0], router: [`10.${n}.1.1`] });
    // the L2 segment's lease comes from its own server, a peer on the segment
    expect(byNic.get(r.nics[2]!.name)).toMatchObject({ server: '192.168.77.1', router: ['192.168.77.1'] });
    expect(
      r.pings
        .filter((p) => p.ok)
        .map((p) => p.target)
        .sort(),
    ).toEqual([`10.${n}.0.1`, `10.${n}.1.1`, '192.168.77.1', ...peerIps].sort());
    expect(dns.child.exitCode).toBeNull();
    await stopAndRemove(sandboxes, id);
  }, 600_000);

  it('autoattachPodInterface: false: no pod-network NIC, the other two as before', async (ctx) => {
    if (missing) return ctx.skip(missing);
    const spec = {
      apiVersion: 'tapwire.io/v1alpha1',
      autoattachPodInterface: false,
      interfaces: blueAndSeg,
      networks: blueAndSegNets,
    };
    const { sandboxes, id } = await runPod('spec2', spec);
    await startDnsmasq(peer, 'segp', tmp, 'seg2', ['--dhcp-range=192.168.77.50,192.168.77.60,255.255.255.0,1h']);
    const st = await sandboxes.status(id, true);
    const res = await boot(st.info.netKey!, 2, [peerIps[1]!]);
    expect(res.verdict.problems).toEqual([]);
    expect(res.report.nics.map((x) => x.mac).at(-1)).toBe('02:00:00:77:00:03');
    expect(res.report.nics).toHaveLength(2);
    const ips = res.report.leases.map((l) => l.ip);
    expect(ips.filter((ip) => ip.startsWith(`10.${n}.1.`))).toHaveLength(1);
    expect(ips.filter((ip) => ip.startsWith('192.168.77.'))).toHaveLength(1);
    await stopAndRemove(sandboxes, id);
  }, 600_000);
});
