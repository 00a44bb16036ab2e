// The network spec's proof, end to end: tapwire-cri (standalone, in process) with the real
// CNI plugins and the real tapmanager daemon runs a pod whose annotation asks for three NICs
// (a custom-MAC virtio NIC on the pod network, an e1000 NIC on a second network from a NAD
// file with its own bridge and host-local range and a default route of its own (so the pod
// has two), an L2-only NIC on an interface placed in the pod before tapmanager's setup, as
// a device plugin would), and tapwire's guest boots through vmwrapper on a real QEMU (TCG).
// The guest reports the NICs in spec order with the spec's MACs, a lease from tapmanager on
// each IP network and a static address on the L2 segment (no DHCP server there), and pings
// each network's gateway, a peer pod on each IP network (a netns attached to the same two
// networks by CNI) and the peer on the L2 segment (a static address of its own).
// Stop leaves the pod's interfaces byte for byte as tapmanager found them (both default
// routes); Stop and Remove leave nothing. The same with autoattachPodInterface: false and no
// pod-network NIC.
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
import { stopAll } from '../fixtures/fence/topology';
import { bridgeConflist, pinnedNetnsNames } from '../helpers/cni-conf';
import { killDaemons, startDaemon, type Daemon } from '../helpers/daemon';
import { dadDone, settledDump } from '../helpers/ip-dump';
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
  const bridgeConf = (name: string, br: string, subnet: string, dst: string) =>
    bridgeConflist(name, br, subnet, path.join(tmp, 'ipam'), { routes: [{ dst }] });

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
        `spec: {config: '${JSON.stringify(bridgeConf('blue', 'br-blue', `10.${n}.1.0/24`, '0.0.0.0/0'))}'}`,
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
      netnsName: pinnedNetnsNames(pinned),
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

  /** The guest: `leases` NICs lease, the L2 NIC takes SEG_ADDR; it pings every gateway and `peers`. */
  async function boot(netKey: string, leases: number, peers: string[]) {
    const image = await ensureGuest();
    const work = path.join(tmp, `guest-${netKey.slice(0, 6)}`);
    fs.mkdirSync(work);
    const run = startGuest({
      command: SHIM,
      args: qemuArgs({
        kernel: image.kernel,
        initrd: image.initrd,
        append: guestCmdline({ dhcpTries: 20, ping: ['gw', ...peers], static: [{ mac: SEG_MAC, address: SEG_ADDR }] }),
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
      expect: { leases, pings: leases + peers.length },
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

  const SEG_MAC = '02:00:00:77:00:03';
  const SEG_ADDR = '192.168.77.5/24';
  const blueAndSeg = [
    { name: 'blue', model: 'e1000', bridge: {} },
    { name: 'seg', macAddress: SEG_MAC, bridge: {} },
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
    const st = await sandboxes.status(id, true);
    const pod = new TestNetns(path.basename(pinned.at(-1)!));
    expect(pod.ip('-4', 'route', 'show', 'default')).toBe(''); // both pod interfaces' routes are stripped
    const defaults = dumps.before!.match(/^unicast default via \S+ dev \S+/gm) ?? [];
    expect(defaults.map((l) => l.split(' dev ')[1]).sort()).toEqual(['eth0', 'net1']); // the NAD's own default route
    const res = await boot(st.info.netKey!, 2, [...peerIps, '192.168.77.1']);
    const r = res.report;
    expect(res.verdict.problems).toEqual([]);
    const blueMac = (JSON.parse(st.info['k8s.v1.cni.cncf.io/network-status']!) as { mac: string }[])[1]!.mac;
    expect(r.nics.map((x) => [x.mac, x.driver])).toEqual([
      ['de:ad:00:00:be:af', 'virtio_net'],
      [blueMac, 'e1000'],
      [SEG_MAC, 'virtio_net'],
    ]);
    const byNic = new Map(r.leases.map((l) => [l.nic, l]));
    const podIps = JSON.parse(st.info['k8s.v1.cni.cncf.io/network-status']!) as { ips: string[] }[];
    expect(byNic.get(r.nics[0]!.name)).toMatchObject({ ip: podIps[0]!.ips[0], router: [`10.${n}.0.1`] });
    expect(byNic.get(r.nics[1]!.name)).toMatchObject({ ip: podIps[1]!.ips[0], router: [`10.${n}.1.1`] });
    // no lease on the L2 segment (no server there): its static address
    expect(byNic.get(r.nics[2]!.name)).toBeUndefined();
    expect(r.statics).toEqual([{ nic: r.nics[2]!.name, addr: SEG_ADDR, gateway: '', ok: true }]);
    expect(
      r.pings
        .filter((p) => p.ok)
        .map((p) => p.target)
        .sort(),
    ).toEqual([`10.${n}.0.1`, `10.${n}.1.1`, '192.168.77.1', ...peerIps].sort());
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
    const st = await sandboxes.status(id, true);
    const res = await boot(st.info.netKey!, 1, [peerIps[1]!, '192.168.77.1']);
    expect(res.verdict.problems).toEqual([]);
    expect(res.report.nics.map((x) => x.mac).at(-1)).toBe(SEG_MAC);
    expect(res.report.nics).toHaveLength(2);
    expect(res.report.leases.map((l) => l.ip)).toEqual([expect.stringMatching(`^10\\.${n}\\.1\\.`)]);
    expect(res.report.statics).toEqual([expect.objectContaining({ addr: SEG_ADDR, ok: true })]);
    expect(res.report.pings.filter((p) => p.ok).map((p) => p.target)).toContain('192.168.77.1');
    await stopAndRemove(sandboxes, id);
  }, 600_000);
});
