// The masquerade binding on real namespaces: a pod and a peer pod made by the real CNI
// bridge plugin with host-local IPAM; tapmanager (SandboxManager in-process) sets up the
// pod with a masquerade NIC; a "guest" netns stands in for the VM (test/fixtures/
// tap-relay.py relays between the tap fd and a veth whose peer is the guest NIC, where
// busybox udhcpc leases). The guest leases 10.0.2.2 with the pod's DNS, reaches the peer
// pod (masqueraded as the pod IP), and a TCP listener in the guest is reached from the
// peer at podIP:port for a listed port (and from the pod's own loopback), refused for an
// unlisted one; with no ports listed, every port reaches it. eth0 keeps its addresses,
// and teardown leaves the pod exactly as CNI made it (no NAT table, forwarding as found).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import type { CniResult } from '../../src/cni/result';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { renderDescribe } from '../../src/tapmanager/tapctl';
import { silentLogger } from '../../src/util/log';
import { waitFor } from '../fixtures/dhcp-net';
import { killAll, spawnIn } from '../fixtures/dhcp-procs';
import { settledDump } from '../helpers/ip-dump';
import { createNetns, type TestNetns } from '../helpers/netns';
import { relayRig, startRelay } from '../helpers/relay-rig';
import { startUdhcpc } from '../helpers/udhcpc';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const CNI_PATH = '/usr/lib/cni';
const GUEST_MAC = '02:00:00:4d:41:53';
const LISTEN = `
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(8)
    while True:
        c, a = s.accept(); c.sendall(("guest:%d from %s\\n" % (port, a[0])).encode()); c.close()
for p in sys.argv[1:]: threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("LISTENING", flush=True)
threading.Event().wait()
`;
/**
 * Turns a veth's TX checksum offload off (ETHTOOL_STXCSUM): the relay copies frames
 * as AF_PACKET reads them, so a partial checksum the kernel would fill in later is
 * not filled (QEMU's virtio-net says NEEDS_CSUM in the vnet header instead).
 */
const TX_CSUM_OFF = `
import ctypes, fcntl, socket, struct, sys
val = ctypes.create_string_buffer(struct.pack("II", 0x17, 0))
ifr = struct.pack("16sP", sys.argv[1].encode(), ctypes.addressof(val)) + bytes(16)
fcntl.ioctl(socket.socket(), 0x8946, ifr)
`;
/** Holds UDP port 67 on every address with no SO_REUSEADDR, so that no DHCP server can bind it. */
const SQUAT_67 = `
import socket, threading
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 67)); print("BOUND", flush=True)
threading.Event().wait()
`;
const CONNECT = `
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3); print(c.recv(100).decode().strip())
except ConnectionRefusedError: print("REFUSED")
except OSError as e: print("ERROR", e)
`;

async function storeAt(dir: string): Promise<RecordStore> {
  const store = new RecordStore(dir);
  await store.init();
  return store;
}

describePrivileged('masquerade binding with a DHCP guest behind NAT', () => {
  const missing = ['bridge', 'host-local'].filter((p) => !fs.existsSync(`${CNI_PATH}/${p}`));
  const noTools = requireTools('busybox', 'python3', 'nft');
  const cniRuns: { pod: TestNetns; node: TestNetns; id: string }[] = [];

  const rig = relayRig({
    prefix: 'twt-masq-',
    beforeNetnsGone: () => {
      for (const r of cniRuns.splice(0)) {
        try {
          cni(r.node, r.pod, r.id, 'DEL');
        } catch {
          // the netns goes anyway
        }
      }
    },
  });

  function conf(): string {
    return JSON.stringify({
      cniVersion: '1.0.0',
      name: 'twt-masq',
      type: 'bridge',
      bridge: 'twmasq0',
      isGateway: true,
      ipMasq: false,
      mtu: 1450,
      ipam: {
        type: 'host-local',
        dataDir: path.join(rig.dir, 'ipam'),
        ranges: [[{ subnet: '10.79.0.0/24', gateway: '10.79.0.1' }]],
        routes: [{ dst: '0.0.0.0/0' }],
      },
      dns: { nameservers: ['10.79.0.53'], search: ['masq.svc.local'] },
    });
  }

  function cni(node: TestNetns, pod: TestNetns, id: string, command: 'ADD' | 'DEL'): string {
    return execFileSync('ip', ['netns', 'exec', node.name, `${CNI_PATH}/bridge`], {
      input: conf(),
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        CNI_COMMAND: command,
        CNI_CONTAINERID: id,
        CNI_NETNS: pod.path,
        CNI_IFNAME: 'eth0',
        CNI_PATH,
      },
    });
  }

  function cniPod(node: TestNetns, label: string): { pod: TestNetns; result: CniResult; ip: string } {
    const pod = createNetns(label);
    const id = `${label}-${process.pid}`;
    const result = JSON.parse(cni(node, pod, id, 'ADD')) as CniResult;
    cniRuns.push({ node, pod, id });
    return { pod, result, ip: result.ips![0]!.address.split('/')[0]! };
  }

  /** The "VM": guest NIC g0 with the NIC's MAC, its peer r0 relayed to the tap. */
  async function startVm(guest: TestNetns, key: string): Promise<void> {
    await startRelay(rig, guest, key);
  }

  async function stopVm(): Promise<void> {
    if (!rig.relay) return;
    const gone = new Promise((r) => rig.relay!.once('exit', r));
    rig.relay!.kill('SIGKILL');
    await gone;
    rig.relay = undefined;
  }

  const connect = (ns: TestNetns, ip: string, port: number): string =>
    ns.exec('python3', ['-c', CONNECT, ip, String(port)]).trim();

  it('guest leases 10.0.2.2, reaches the peer; listed ports reach it, others are refused; no ports: all; teardown exact', async (ctx) => {
    const why = noTools ?? (missing.length ? `CNI plugins missing in ${CNI_PATH}: ${missing.join(', ')}` : undefined);
    if (why) {
      if (inCI) throw new Error(why);
      return ctx.skip(why);
    }
    const node = createNetns('masqnode');
    const a = cniPod(node, 'masqpod');
    const peer = cniPod(node, 'masqpeer');
    const before = await settledDump(a.pod);
    const nftBefore = a.pod.exec('nft', ['list', 'ruleset']);
    const fwdBefore = a.pod.exec('sysctl', ['-n', 'net.ipv4.ip_forward']).trim();
    const eth0Addrs = () =>
      a.pod.ip('-o', 'addr', 'show', 'dev', 'eth0').replace(/valid_lft \S+ preferred_lft \S+/g, '');
    const addrsBefore = eth0Addrs();

    const nic = (ports?: unknown[]) => ({
      sandboxId: 'sb-masq',
      netnsPath: a.pod.path,
      nics: [
        {
          name: 'default',
          binding: 'masquerade',
          podInterface: 'eth0',
          cniResult: a.result,
          macAddress: GUEST_MAC,
          ...(ports ? { ports } : {}),
        },
      ],
    });

    // 1. ports 8080 and 9000-9001 listed
    const res = await rig.mgr.setup(
      nic([
        { port: 8080, protocol: 'TCP' },
        { port: 9000, endPort: 9001, protocol: 'TCP' },
      ]),
    );
    expect(res.nics[0]).toMatchObject({ binding: 'masquerade', ip: '10.0.2.2', prefixLen: 24, gateway: '10.0.2.1' });
    expect(eth0Addrs()).toBe(addrsBefore); // the pod keeps its IP
    expect(a.pod.exec('sysctl', ['-n', 'net.ipv4.ip_forward']).trim()).toBe('1');
    const st = await rig.mgr.status('sb-masq');
    const text = renderDescribe(st);
    expect(text).toContain('masquerade');
    expect(text).toContain('10.0.2.0/24');
    expect(text).toContain(`prerouting: iifname "eth0" tcp dport 9000-9001 dnat to 10.0.2.2`);

    const guest = createNetns('masqguest');
    guest.ip('link', 'add', 'g0', 'type', 'veth', 'peer', 'name', 'r0');
    guest.ip('link', 'set', 'g0', 'address', GUEST_MAC, 'up');
    guest.ip('link', 'set', 'r0', 'up');
    guest.exec('python3', ['-c', TX_CSUM_OFF, 'g0']);
    await startVm(guest, res.netKey);
    const bound = await startUdhcpc(guest, rig.dir, 'g0', ['search']).bound();
    expect(bound.env).toMatchObject({
      ip: '10.0.2.2',
      mask: '24',
      router: '10.0.2.1',
      serverid: '10.0.2.1',
      dns: '10.79.0.53',
      search: 'masq.svc.local',
    });
    await waitFor('default route', () => guest.ip('-4', 'route', 'show').includes('default via 10.0.2.1') || undefined);

    // out: the guest reaches the peer pod, which sees the pod's IP
    expect(guest.exec('busybox', ['ping', '-c', '2', '-W', '3', peer.ip])).toMatch(/2 packets received/);
    // a forged source never leaves the pod (the guest sends anything); the peer would
    // answer it (its route to the forged address goes through the pod), so only the drop
    // stops the replies
    guest.ip('addr', 'add', '10.0.2.9/24', 'dev', 'g0');
    peer.pod.ip('route', 'add', '10.0.2.9/32', 'via', a.ip);
    let forged = '';
    try {
      forged = guest.exec('busybox', ['ping', '-c', '2', '-W', '2', '-I', '10.0.2.9', peer.ip]);
    } catch (e) {
      forged = String((e as { stdout?: unknown }).stdout ?? '');
    }
    expect(forged).toMatch(/0 packets received/);
    guest.ip('addr', 'del', '10.0.2.9/24', 'dev', 'g0');
    peer.pod.ip('route', 'del', '10.0.2.9/32', 'via', a.ip);
    const listener = spawnIn(guest, 'python3', ['-u', '-c', LISTEN, '8080', '8081', '9001']);
    await waitFor('guest listening', () => listener.output().includes('LISTENING') || undefined);
    // in: listed ports reach the guest (from the peer's address, not NATed), an unlisted one is refused
    expect(connect(peer.pod, a.ip, 8080)).toBe(`guest:8080 from ${peer.ip}`);
    expect(connect(peer.pod, a.ip, 9001)).toBe(`guest:9001 from ${peer.ip}`);
    expect(connect(peer.pod, a.ip, 8081)).toBe('REFUSED');
    // the pod's own loopback (a port-forward into the pod) reaches the guest from the bridge address
    expect(connect(a.pod, '127.0.0.1', 8080)).toBe('guest:8080 from 10.0.2.1');
    expect(eth0Addrs()).toBe(addrsBefore);

    // teardown: the pod exactly as CNI made it
    await stopVm();
    expect(await rig.mgr.teardown('sb-masq')).toEqual({ errors: [] });
    expect(await settledDump(a.pod)).toBe(before);
    expect(a.pod.exec('nft', ['list', 'ruleset'])).toBe(nftBefore);
    expect(a.pod.exec('sysctl', ['-n', 'net.ipv4.ip_forward']).trim()).toBe(fwdBefore);

    // 2. no ports listed: every port is forwarded (the guest keeps its address and MAC)
    const res2 = await rig.mgr.setup(nic());
    await startVm(guest, res2.netKey);
    guest.ip('neigh', 'flush', 'dev', 'g0'); // the new bridge has a new MAC (a rebooted VM asks again anyway)
    expect(connect(peer.pod, a.ip, 8081)).toBe(`guest:8081 from ${peer.ip}`);
    expect(connect(peer.pod, a.ip, 8080)).toBe(`guest:8080 from ${peer.ip}`);
    expect(guest.exec('busybox', ['ping', '-c', '1', '-W', '3', peer.ip])).toMatch(/1 packets received/);
    await stopVm();
    await killAll();
    expect(await rig.mgr.teardown('sb-masq')).toEqual({ errors: [] });
    expect(await settledDump(a.pod)).toBe(before);
    expect(a.pod.exec('nft', ['list', 'ruleset'])).toBe(nftBefore);
  }, 90_000);

  it('refuses a guest CIDR overlapping the pod network (nothing touched); a restart finds no drift, repairs a lost NAT table and forwarding; a failed setup rolls back exactly', async (ctx) => {
    const why = noTools ?? (missing.length ? `CNI plugins missing in ${CNI_PATH}: ${missing.join(', ')}` : undefined);
    if (why) {
      if (inCI) throw new Error(why);
      return ctx.skip(why);
    }
    const node = createNetns('masqnode');
    const a = cniPod(node, 'masqpod');
    const before = await settledDump(a.pod);
    const nftBefore = a.pod.exec('nft', ['list', 'ruleset']);
    const fwdBefore = a.pod.exec('sysctl', ['-n', 'net.ipv4.ip_forward']).trim();
    const req = (extra: Record<string, unknown> = {}, id = 'sb-masq2') => ({
      sandboxId: id,
      netnsPath: a.pod.path,
      nics: [{ name: 'default', binding: 'masquerade', podInterface: 'eth0', cniResult: a.result, ...extra }],
    });
    for (const [cidr, why] of [
      ['10.79.0.0/16', 'overlaps the pod'],
      ['10.79.0.128/25', 'overlaps the pod'],
      ['10.0.2.0/31', 'at most /30'],
      ['10.0.2.1/24', 'CIDR form'],
    ] as const) {
      await expect(rig.mgr.setup(req({ guestCidr: cidr }))).rejects.toMatchObject({
        code: 'EINVAL',
        field: 'nics[0].guestCidr',
        message: expect.stringMatching(
          new RegExp(`^invalid nics\\[0\\]\\.guestCidr "${cidr.replace(/\./g, '\\.')}": .*${why}`),
        ),
      });
    }
    await expect(
      rig.mgr.setup({ ...req(), nics: [{ ...req().nics[0]!, binding: 'bridge', guestCidr: '10.9.0.0/24' }] }),
    ).rejects.toMatchObject({ field: 'nics[0].guestCidr' });
    expect(await settledDump(a.pod)).toBe(before);

    // a configured CIDR; a restarted manager recovers it without drift
    const res = await rig.mgr.setup(req({ guestCidr: '192.168.77.0/24', ports: [{ port: 22, protocol: 'TCP' }] }));
    expect(res.nics[0]).toMatchObject({ ip: '192.168.77.2', gateway: '192.168.77.1', prefixLen: 24 });
    await rig.mgr.close();
    rig.mgr = new SandboxManager({ store: await storeAt(rig.dir), log: silentLogger });
    await rig.mgr.recover();
    expect(await rig.mgr.status('sb-masq2')).toMatchObject({ state: 'ready', drift: [] });
    // the table and forwarding lost behind its back: the next restart puts them back
    a.pod.exec('nft', ['delete', 'table', 'ip', 'tapwire_masq_br0']);
    a.pod.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=0', 'net.ipv4.conf.br0.route_localnet=0']);
    await rig.mgr.close();
    rig.mgr = new SandboxManager({ store: await storeAt(rig.dir), log: silentLogger });
    await rig.mgr.recover();
    expect((await rig.mgr.status('sb-masq2')).drift).toEqual([
      'route_localnet was off on br0: turned on',
      'ip_forward was off: turned on',
      'NAT table ip tapwire_masq_br0 missing: re-applied',
    ]);
    expect(a.pod.exec('nft', ['list', 'table', 'ip', 'tapwire_masq_br0'])).toContain(
      'tcp dport 22 dnat to 192.168.77.2',
    );
    expect(await rig.mgr.teardown('sb-masq2')).toEqual({ errors: [] });
    expect(await settledDump(a.pod)).toBe(before);
    expect(a.pod.exec('nft', ['list', 'ruleset'])).toBe(nftBefore);

    // a setup that fails after the NIC is built (its DHCP server cannot start: the port is taken) rolls back exactly
    const squat = spawnIn(a.pod, 'python3', ['-c', SQUAT_67]);
    await waitFor('port 67 taken', () => squat.output().includes('BOUND') || undefined);
    await expect(rig.mgr.setup(req({}, 'sb-masq3'))).rejects.toThrow(/EADDRINUSE|in use/i);
    await killAll();
    expect(await settledDump(a.pod)).toBe(before);
    expect(a.pod.exec('nft', ['list', 'ruleset'])).toBe(nftBefore);
    expect(a.pod.exec('sysctl', ['-n', 'net.ipv4.ip_forward']).trim()).toBe(fwdBefore);
  }, 90_000);
});
