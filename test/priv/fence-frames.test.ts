// The fence against crafted frames on real namespaces: DHCP in every encapsulation, sent
// from the guest, from the pod network and from br0 itself, is counted as dropped and
// never seen on the other side, while the same frames on other ports, ping and ARP pass;
// a frame from the tap with another source MAC is dropped. Plus apply/remove idempotence.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { applyFence, fenceCounterNames, fenceExists, readFenceCounters, removeFence } from '../../src/tapmanager/fence';
import { removeAllNetns, removeNetns, TestNetns } from '../helpers/netns';
import { describePrivileged, requireTools } from '../helpers/privileged';
import {
  buildSandbox,
  FrameSpec,
  GUEST_IP,
  GUEST_MAC,
  macOf,
  NIC,
  NODE_IP,
  Sandbox,
  scanPcap,
  sendFrame,
  startCapture,
  stopAll,
  stopCapture,
  TABLE,
} from '../fixtures/fence/topology';

const missing = requireTools('nft', 'nsenter', 'tcpdump', 'python3');

async function counters(sb: Sandbox): Promise<Map<string, number>> {
  return new Map((await readFenceCounters(sb.pod.path, TABLE)).map((c) => [c.name, c.packets]));
}

/** The counters that moved between two reads, with how much. */
function delta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) if (v !== (before.get(k) ?? 0)) out[k] = v - (before.get(k) ?? 0);
  return out;
}

interface Case {
  name: string;
  frame: Omit<FrameSpec, 'src' | 'marker'>;
  /** the counters (suffix after nic0_<dir>_) one of which must count the frame; empty = passes */
  expect: string[];
}

const DHCP: Case[] = [];
for (const [kind, sport, dport] of [
  ['client', 68, 67],
  ['server', 67, 68],
  ['server-sport', 67, 5000],
] as const) {
  const port = dport === 5000 ? 'sport' : 'dport';
  DHCP.push(
    // an offloaded tag (the receive path of a port moves the outer tag to skb metadata)
    // leaves the kernel's parse intact; a tag left inline (br0's own output) does not
    { name: `${kind} untagged`, frame: { sport, dport }, expect: [`udp_${port}`] },
    { name: `${kind} 802.1Q`, frame: { sport, dport, encap: 'dot1q' }, expect: [`udp_${port}`, `vlan_${port}`] },
    { name: `${kind} 802.1ad`, frame: { sport, dport, encap: 'dot1ad' }, expect: [`udp_${port}`, `vlan_${port}`] },
    { name: `${kind} QinQ`, frame: { sport, dport, encap: 'qinq' }, expect: [`qinq_${port}`] },
  );
}
DHCP.push(
  { name: 'client first fragment', frame: { firstFragment: true }, expect: ['udp_dport'] },
  {
    name: 'client first fragment 802.1Q',
    frame: { firstFragment: true, encap: 'dot1q' },
    expect: ['udp_dport', 'vlan_dport'],
  },
  {
    name: 'server first fragment QinQ',
    frame: { firstFragment: true, encap: 'qinq', sport: 67, dport: 68 },
    expect: ['qinq_dport'],
  },
  { name: 'client with IP options', frame: { ipOptions: true }, expect: ['udp_dport'] },
  {
    name: 'client with IP options 802.1Q',
    frame: { ipOptions: true, encap: 'dot1q' },
    expect: ['udp_dport', 'vlan_ipopt'],
  },
  { name: 'client with IP options QinQ', frame: { ipOptions: true, encap: 'qinq' }, expect: ['qinq_ipopt'] },
  { name: 'client in three tags', frame: { encap: 'vlan3' }, expect: ['vlan3'] },
);
/** DHCPv6 and router discovery/redirect frames; `guest` = as the guest sends them (prerouting drops its RAs and redirects). */
function v6Cases(guest: boolean): Case[] {
  const out: Case[] = [];
  const icmp = (t: number, kernel: string, fixed: string): void => {
    const own = guest && t !== 133 ? [`nic0_guest_${t === 134 ? 'ra' : 'redirect'}`] : undefined;
    const f = { ipv6: 'icmp6' as const, icmpType: t };
    out.push(
      { name: `icmp6 ${t} untagged`, frame: f, expect: own ?? [kernel] },
      {
        name: `icmp6 ${t} 802.1Q`,
        frame: { ...f, encap: 'dot1q' },
        expect: own ? [...own, `vlan6_${fixed}`] : [kernel, `vlan6_${fixed}`],
      },
      {
        name: `icmp6 ${t} 802.1ad`,
        frame: { ...f, encap: 'dot1ad' },
        expect: own ? [...own, `vlan6_${fixed}`] : [kernel, `vlan6_${fixed}`],
      },
      { name: `icmp6 ${t} QinQ`, frame: { ...f, encap: 'qinq' }, expect: [`qinq6_${fixed}`] },
      { name: `icmp6 ${t} hop-by-hop`, frame: { ...f, ipOptions: true }, expect: own ?? [kernel] },
      {
        name: `icmp6 ${t} hop-by-hop 802.1Q`,
        frame: { ...f, ipOptions: true, encap: 'dot1q' },
        expect: [...(own ?? [kernel]), 'vlan6_ext'],
      },
      { name: `icmp6 ${t} hop-by-hop QinQ`, frame: { ...f, ipOptions: true, encap: 'qinq' }, expect: ['qinq6_ext'] },
    );
  };
  icmp(133, 'icmp6_router', 'router');
  icmp(134, 'icmp6_router', 'router');
  icmp(137, 'icmp6_redirect', 'redirect');
  for (const [kind, sport, dport] of [
    ['dhcp6 client', 546, 547],
    ['dhcp6 server', 547, 546],
  ] as const) {
    const f = { ipv6: 'udp' as const, sport, dport };
    out.push(
      { name: `${kind} untagged`, frame: f, expect: ['udp6_dport'] },
      { name: `${kind} 802.1Q`, frame: { ...f, encap: 'dot1q' }, expect: ['udp6_dport', 'vlan6_dport'] },
      { name: `${kind} 802.1ad`, frame: { ...f, encap: 'dot1ad' }, expect: ['udp6_dport', 'vlan6_dport'] },
      { name: `${kind} QinQ`, frame: { ...f, encap: 'qinq' }, expect: ['qinq6_dport'] },
      { name: `${kind} first fragment`, frame: { ...f, firstFragment: true }, expect: ['udp6_dport'] },
      {
        name: `${kind} first fragment 802.1Q`,
        frame: { ...f, firstFragment: true, encap: 'dot1q' },
        expect: ['udp6_dport', 'vlan6_ext'],
      },
      { name: `${kind} hop-by-hop QinQ`, frame: { ...f, ipOptions: true, encap: 'qinq' }, expect: ['qinq6_ext'] },
    );
  }
  out.push({
    name: 'dhcp6 server sport only',
    frame: { ipv6: 'udp', sport: 547, dport: 5000 },
    expect: ['udp6_sport'],
  });
  out.push({
    name: 'dhcp6 server sport only QinQ',
    frame: { ipv6: 'udp', sport: 547, dport: 5000, encap: 'qinq' },
    expect: ['qinq6_sport'],
  });
  return out;
}
/** What must cross: neighbour discovery proper (NS 135, NA 136) and other IPv6 UDP, in every encapsulation. */
const CONTROL6: Case[] = (['none', 'dot1q', 'dot1ad', 'qinq'] as const).flatMap((encap) => [
  { name: `icmp6 135 ${encap}`, frame: { ipv6: 'icmp6' as const, icmpType: 135, encap }, expect: [] },
  { name: `icmp6 136 ${encap}`, frame: { ipv6: 'icmp6' as const, icmpType: 136, encap }, expect: [] },
  { name: `udp6 5000 ${encap}`, frame: { ipv6: 'udp' as const, sport: 5000, dport: 5001, encap }, expect: [] },
]);
const CONTROL: Case[] = (['none', 'dot1q', 'dot1ad', 'qinq'] as const).flatMap((encap) => [
  { name: `udp 5000 ${encap}`, frame: { sport: 5000, dport: 5001, encap }, expect: [] },
  {
    name: `udp 5000 ${encap} first fragment`,
    frame: { sport: 5000, dport: 5001, encap, firstFragment: true },
    expect: [],
  },
]);

describePrivileged('fence (real frames)', () => {
  let sb: Sandbox;
  let dir: string;
  beforeEach(async () => {
    if (missing) throw new Error(missing);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-fence-'));
    sb = await buildSandbox();
  });
  afterEach(async () => {
    await stopAll();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Sends each case from (ns, ifname) with a unique marker, one at a time, checking which
   * counter moved; then checks which markers the captures on the far side saw.
   */
  async function run(
    label: string,
    from: TestNetns,
    ifname: string,
    src: string,
    dir_: 'in' | 'out',
    cases: Case[],
    far: { ns: TestNetns; ifname: string }[],
  ): Promise<void> {
    const caps = [];
    for (const f of far) {
      const file = path.join(dir, `${label}-${f.ifname}.pcap`);
      caps.push({ file, ifname: f.ifname, proc: await startCapture(f.ns, f.ifname, file) });
    }
    const seenBy: Record<string, string[]> = {};
    const hits: string[] = [];
    for (const c of cases) {
      const marker = `${label}-${c.name.replace(/ /g, '_')}`;
      const before = await counters(sb);
      sendFrame(from, ifname, { src, marker, ...c.frame });
      let moved: Record<string, number> = {};
      if (c.expect.length) {
        const end = Date.now() + 2000;
        while (Object.keys(moved).length === 0 && Date.now() < end) moved = delta(before, await counters(sb));
      } else {
        moved = delta(before, await counters(sb));
      }
      const allowed = c.expect.map((s) => (s.startsWith('nic0_') ? s : `nic0_${dir_}_${s}`));
      expect({ case: c.name, moved: Object.keys(moved).length ? moved : 'nothing' }).toEqual({
        case: c.name,
        moved: allowed.length ? { [Object.keys(moved).find((k) => allowed.includes(k)) ?? allowed[0]!]: 1 } : 'nothing',
      });
      seenBy[marker] = [];
      hits.push(`${c.name}: ${Object.keys(moved).join(',') || '-'}`);
    }
    console.log(`[fence] ${label} -> ${hits.join('; ')}`);
    // a last control frame that every capture must see, so the captures are known to be complete
    sendFrame(from, ifname, { src, marker: `${label}-end`, sport: 5000, dport: 5001 });
    for (const cap of caps) {
      await new Promise((r) => setTimeout(r, 200));
      await stopCapture(cap.proc);
      const scan = scanPcap(cap.file);
      expect(scan.markers, `capture on ${cap.ifname}`).toContain(`${label}-end`);
      for (const m of scan.markers) (seenBy[m] ??= []).push(cap.ifname);
    }
    for (const c of cases) {
      const marker = `${label}-${c.name.replace(/ /g, '_')}`;
      const want = c.expect.length ? [] : far.map((f) => f.ifname);
      expect({ case: c.name, seenBy: seenBy[marker] }).toEqual({ case: c.name, seenBy: want });
    }
  }

  it('drops DHCP in every encapsulation from the guest, and lets other UDP through', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    await run('guest', sb.guest, 'g0', GUEST_MAC, 'out', [...DHCP, ...CONTROL], [{ ns: sb.node, ifname: 'n0' }]);
  });

  it('drops DHCP in every encapsulation from the pod network, before the guest and br0', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    await run(
      'node',
      sb.node,
      'n0',
      macOf(sb.node, 'n0'),
      'in',
      [...DHCP, ...CONTROL],
      [
        { ns: sb.guest, ifname: 'g0' },
        { ns: sb.pod, ifname: 'br0' },
      ],
    );
  });

  it('drops DHCP that br0 itself sends out the veth (tags left inline, not offloaded)', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    const inline = DHCP.map((c) => ({
      ...c,
      // nothing moves an inline tag to metadata on this path: only the fixed-offset rules can see it
      expect:
        c.frame.encap === 'dot1q' || c.frame.encap === 'dot1ad'
          ? c.expect.filter((e) => !e.startsWith('udp_'))
          : c.expect,
    }));
    await run(
      'br0',
      sb.pod,
      'br0',
      macOf(sb.pod, 'br0'),
      'out',
      [...inline, ...CONTROL],
      [{ ns: sb.node, ifname: 'n0' }],
    );
  });

  it('without the fence the same frames do cross (so the captures above can see them)', async () => {
    const cap = await startCapture(sb.node, 'n0', path.join(dir, 'open.pcap'));
    for (const c of DHCP) sendFrame(sb.guest, 'g0', { src: GUEST_MAC, marker: c.name.replace(/ /g, '_'), ...c.frame });
    await new Promise((r) => setTimeout(r, 300));
    await stopCapture(cap);
    const scan = scanPcap(path.join(dir, 'open.pcap'));
    expect(scan.markers.sort()).toEqual(DHCP.map((c) => c.name.replace(/ /g, '_')).sort());
    // the scanner finds DHCP in every encapsulation (three tags included)
    expect(scan.dhcp).toHaveLength(DHCP.length);
  });

  it('drops DHCPv6, RS, RA and redirects in every encapsulation from the guest; NS, NA and other UDP pass', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    await run(
      'guest6',
      sb.guest,
      'g0',
      GUEST_MAC,
      'out',
      [...v6Cases(true), ...CONTROL6],
      [{ ns: sb.node, ifname: 'n0' }],
    );
  });

  it('drops a rogue RA, redirect or DHCPv6 server on the pod network before the guest and br0', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    await run(
      'node6',
      sb.node,
      'n0',
      macOf(sb.node, 'n0'),
      'in',
      [...v6Cases(false), ...CONTROL6],
      [
        { ns: sb.guest, ifname: 'g0' },
        { ns: sb.pod, ifname: 'br0' },
      ],
    );
  });

  it('drops the RAs and DHCPv6 that br0 itself sends out the veth (tags inline)', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    const inline = v6Cases(false).map((c) => ({
      ...c,
      expect:
        c.frame.encap === 'dot1q' || c.frame.encap === 'dot1ad'
          ? c.expect.filter((e) => !e.startsWith('udp6_') && !e.startsWith('icmp6_'))
          : c.expect,
    }));
    await run(
      'br06',
      sb.pod,
      'br0',
      macOf(sb.pod, 'br0'),
      'out',
      [...inline, ...CONTROL6],
      [{ ns: sb.node, ifname: 'n0' }],
    );
  });

  it('drops frames from the tap with a source MAC other than the guest MAC', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    const cap = await startCapture(sb.node, 'n0', path.join(dir, 'spoof.pcap'));
    const before = await counters(sb);
    sendFrame(sb.guest, 'g0', { src: '52:54:00:66:66:66', marker: 'spoofed', sport: 5000, dport: 5001 });
    sendFrame(sb.guest, 'g0', {
      src: '52:54:00:66:66:66',
      marker: 'spoofed-tagged',
      sport: 5000,
      dport: 5001,
      encap: 'dot1q',
    });
    sendFrame(sb.guest, 'g0', { src: GUEST_MAC, marker: 'genuine', sport: 5000, dport: 5001 });
    await new Promise((r) => setTimeout(r, 200));
    await stopCapture(cap);
    expect(delta(before, await counters(sb))).toEqual({ nic0_spoof: 2 });
    expect(scanPcap(path.join(dir, 'spoof.pcap')).markers).toEqual(['genuine']);
  });

  it('lets ping and ARP through between the guest and the pod network', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    sb.guest.ip('addr', 'add', `${GUEST_IP}/24`, 'dev', 'g0');
    sb.guest.exec('busybox', ['arping', '-c', '1', '-w', '2', '-I', 'g0', NODE_IP]); // exits 1 without a reply
    sb.guest.exec('busybox', ['ping', '-c', '2', '-W', '2', NODE_IP]);
    sb.node.exec('busybox', ['ping', '-c', '2', '-W', '2', GUEST_IP]);
    expect(sb.guest.ip('neigh', 'show', NODE_IP)).toContain(`lladdr ${macOf(sb.node, 'nbr')}`);
    expect(sb.node.ip('neigh', 'show', GUEST_IP)).toContain(`lladdr ${GUEST_MAC}`);
    const moved = (await readFenceCounters(sb.pod.path, TABLE)).filter((c) => c.packets > 0);
    expect(moved).toEqual([]);
  });

  it('the nft CLI (TAPWIRE_NFT=cli) defines, reads and removes the same fence as the netlink batch', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    const viaLib = sb.pod.exec('nft', ['list', 'table', 'bridge', TABLE]);
    // libnftables ran in the pod's namespace window: the host has no such table
    expect(() => execFileSync('nft', ['list', 'table', 'bridge', TABLE], { stdio: 'pipe' })).toThrow();
    await removeFence(sb.pod.path, TABLE);
    process.env.TAPWIRE_NFT = 'cli';
    try {
      await applyFence(sb.pod.path, TABLE, [NIC]);
      expect(sb.pod.exec('nft', ['list', 'table', 'bridge', TABLE])).toBe(viaLib);
      expect(await fenceExists(sb.pod.path, TABLE)).toBe(true);
      expect((await readFenceCounters(sb.pod.path, TABLE)).map((c) => c.name)).toEqual(fenceCounterNames([NIC]));
      await removeFence(sb.pod.path, TABLE);
      expect(await fenceExists(sb.pod.path, TABLE)).toBe(false);
    } finally {
      delete process.env.TAPWIRE_NFT;
    }
  });

  it('applies idempotently, keeps counters, and removes idempotently, even with the netns gone', async () => {
    expect(await fenceExists(sb.pod.path, TABLE)).toBe(false);
    const t0 = process.hrtime.bigint();
    await applyFence(sb.pod.path, TABLE, [NIC]);
    const firstMs = Number(process.hrtime.bigint() - t0) / 1e6;
    expect(await fenceExists(sb.pod.path, TABLE)).toBe(true);
    sendFrame(sb.node, 'n0', { src: macOf(sb.node, 'n0'), marker: 'x' });
    const t1 = process.hrtime.bigint();
    await applyFence(sb.pod.path, TABLE, [NIC]);
    const againMs = Number(process.hrtime.bigint() - t1) / 1e6;
    console.log(`[fence] apply: first ${firstMs.toFixed(1)} ms, again ${againMs.toFixed(1)} ms`);
    const list = await readFenceCounters(sb.pod.path, TABLE);
    expect(list.map((c) => c.name)).toEqual(fenceCounterNames([NIC]));
    expect(list.find((c) => c.name === 'nic0_in_udp_dport')).toMatchObject({ packets: 1 });
    expect(sb.pod.exec('nft', ['list', 'table', 'bridge', TABLE]).match(/ drop$/gm)).toHaveLength(62);

    await removeFence(sb.pod.path, TABLE);
    expect(await fenceExists(sb.pod.path, TABLE)).toBe(false);
    await removeFence(sb.pod.path, TABLE);
    await expect(readFenceCounters(sb.pod.path, TABLE)).rejects.toMatchObject({ code: 'ENOENT', field: 'table' });

    await applyFence(sb.pod.path, TABLE, [NIC]);
    const nsPath = sb.pod.path;
    removeNetns(sb.pod);
    await removeFence(nsPath, TABLE);
    expect(await fenceExists(nsPath, TABLE)).toBe(false);
    await expect(applyFence(nsPath, TABLE, [NIC])).rejects.toMatchObject({ code: 'ENOENT', field: 'netnsPath' });
    await expect(applyFence('/etc/hostname', TABLE, [NIC])).rejects.toMatchObject({
      code: 'EINVAL',
      field: 'netnsPath',
    });
  });

  it('reports a refusal by the kernel (or nft) as EIO naming the table, the netns and what was refused', async () => {
    // a chain of the same name on another hook cannot be redefined
    const conflict = (): string =>
      sb.pod.exec(
        'nft',
        ['add table bridge', TABLE, '; add chain bridge', TABLE, 'prerouting { type filter hook input priority 0; }']
          .join(' ')
          .split(' '),
      );
    conflict();
    const err = await applyFence(sb.pod.path, TABLE, [NIC]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EIO' });
    expect((err as Error).message).toMatch(
      new RegExp(`^failed to apply fence "${TABLE}" in netns ${sb.pod.path}: add chain prerouting: E[A-Z]+`),
    );
    // nothing of the batch went in: the conflicting chain is all there is
    expect(sb.pod.exec('nft', ['list', 'table', 'bridge', TABLE])).not.toContain('counter');
    process.env.TAPWIRE_NFT = 'lib';
    try {
      const viaNft = await applyFence(sb.pod.path, TABLE, [NIC]).catch((e: unknown) => e);
      expect((viaNft as Error).message).toContain(
        `failed to apply fence "${TABLE}" in netns ${sb.pod.path}: nft: Error:`,
      );
    } finally {
      delete process.env.TAPWIRE_NFT;
    }
    await removeFence(sb.pod.path, TABLE);
    await applyFence(sb.pod.path, TABLE, [NIC]);
  });
});
