#!/usr/bin/env node
// tapctl: the operator's view of tapmanager. `list`, `describe ID` (the live topology
// as a diagram), `status ID`, and `setup`/`teardown` for scripts; `--json` everywhere.
import * as fs from 'node:fs';
import { parseFlags, usage, FlagSpec } from '../util/flags';
import { domainBinding } from './bindings/domain';
import { TapmanagerClient, type StatsMetric } from './client';
import { dhcpSummary } from './metrics/dhcp';
import type { DhcpCounters } from '../dhcp/counters';
import { renderMasquerade } from './bindings/masquerade/describe';
import { renderSlirp } from './bindings/slirp/describe';
import { renderPasst } from './bindings/passt/describe';
import { renderMacvtap } from './bindings/macvtap/describe';
import { ipv6Of, renderIpv6 } from './bindings/bridge/describe';
import { describeRoute } from './plan/routes';
import type { CniResult } from '../cni/result';
import { DEFAULT_CONTROL_SOCKET, type NicRequest } from './protocol';
import type { BoundedStatus } from './reply-bounds';

const FLAGS: FlagSpec[] = [
  { name: 'socket', help: 'tapmanager control socket', default: DEFAULT_CONTROL_SOCKET },
  { name: 'json', help: 'print JSON', boolean: true },
  { name: 'netns', help: 'setup: netns path' },
  { name: 'cni-result', help: 'setup: file with the CNI ADD result (JSON)' },
  { name: 'nics', help: 'setup: file with the nics list (JSON, docs/protocol.md), instead of --cni-result' },
  { name: 'hostname', help: 'setup: guest hostname' },
  { name: 'queues', help: 'setup: queues per guest NIC (multiqueue taps above 1)' },
  { name: 'help', help: 'print this help', boolean: true },
];

const HELP = `commands:
  list                      sandboxes, one line each
  describe SANDBOX_ID       the live topology of a sandbox as a diagram
  status SANDBOX_ID         the same, as data
  setup SANDBOX_ID --netns PATH (--cni-result FILE [--queues N] | --nics FILE) [--hostname NAME]
  teardown SANDBOX_ID
  revoke SANDBOX_ID         detach whoever holds the sandbox's tap fds (the next fetch then works)
  interfaces SANDBOX_ID     the libvirt <interface> elements of the sandbox's NICs, in order (for a
                            runtime that writes its own domain XML instead of running vmwrapper)
  stats                     node-wide counters, as the metrics endpoint has them (--metrics-address)
`;

/** The libvirt <interface> elements equivalent to what vmwrapper gives QEMU, in NIC order. */
export function renderInterfaces(s: Pick<BoundedStatus, 'nics'>): string {
  return s.nics
    .map((n, i) => {
      const binding = n.binding ?? 'bridge';
      const d = domainBinding(binding);
      if (!d) return `<!-- nics[${i}]: binding "${binding}" has no domain side in this tapctl -->`;
      const nic = {
        ...(n.name !== undefined ? { name: n.name } : {}),
        binding,
        mac: n.mac,
        model: n.model,
        queues: n.queues,
        vhost: false,
        tap: n.tap,
      };
      return d.libvirtInterface(nic);
    })
    .join('\n');
}

export function renderDescribe(s: BoundedStatus): string {
  const out: string[] = [];
  out.push(`sandbox ${s.sandboxId}  state ${s.state}  created ${s.createdAt}`);
  const moreDrift = s.omitted?.drift ? `; and ${s.omitted.drift} more` : '';
  out.push(`netns ${s.netnsPath}${s.drift.length ? `  DRIFT: ${s.drift.join('; ')}${moreDrift}` : ''}`);
  const dhcp = s.dhcp as {
    ifname?: string;
    leases?: { mac: string; state: string; boundAt?: string; expiresAt?: string }[];
    logLinesSuppressed?: number;
  }[];
  s.nics.forEach((n, i) => {
    const live = s.live?.[i] ?? [];
    const more = (k: 'routes' | 'unexpressible' | 'unrestorable' | 'warnings'): string =>
      n.omitted?.[k] ? ` (and ${n.omitted[k]} more not shown)` : '';
    const l = (name: string): string => {
      const x = live.find((y) => y.name === name);
      return x ? `${x.mac}  mtu ${x.mtu}  ${x.up ? 'UP' : 'DOWN'}` : 'MISSING';
    };
    // the NIC's DHCP server is the one on its bridge (a NIC without one, L2-only or
    // IPv6-only, has none: the list is not one entry per NIC)
    const server = dhcp.find((x) => x.ifname === n.bridge);
    const v6 = ipv6Of(s.ipv6, n.bridge);
    const v4 = n.ip !== undefined;
    const lease = server?.leases?.find((x) => x.mac === n.mac);
    out.push('');
    if (n.name !== undefined)
      out.push(`  nic ${n.name}  binding ${n.binding ?? 'bridge'}${n.l2Only ? '  L2 only' : ''}`);
    const leaseText = lease
      ? `${lease.state}${lease.boundAt ? ` since ${lease.boundAt}` : ''}${lease.expiresAt ? `, expires ${lease.expiresAt}` : ''}`
      : 'none yet';
    if (n.masquerade) {
      out.push(...renderMasquerade(n, l, leaseText));
      return;
    }
    if (n.slirp) {
      out.push(...renderSlirp(n, l));
      return;
    }
    if (n.macvtap) {
      out.push(...renderMacvtap(n, l));
      return;
    }
    if (n.passt) {
      out.push(...renderPasst(n, l));
      return;
    }
    out.push(
      `  pod network ══ ${n.veth.padEnd(6)} ${l(n.veth)}   ${n.name !== undefined ? 'pod interface' : `(CNI interface ${n.index})`}`,
    );
    const fenced = [...(v4 ? ['DHCP'] : []), ...(v6 ? ['DHCPv6', 'RS/RA'] : [])].join(', ') || 'DHCP';
    out.push(
      `                    │   ${n.l2Only ? "no fence: the segment is the guest's" : `fence: no ${fenced} crosses ${n.veth}`}`,
    );
    const serves = [...(v4 ? ['169.254.254.2/24, DHCP server'] : []), ...(v6 ? ['DHCPv6 server, router adverts'] : [])];
    out.push(
      `                 ${n.bridge.padEnd(6)} ${l(n.bridge)}   ${n.l2Only ? 'no address, no DHCP server' : serves.join('; ')}`,
    );
    out.push(`                    │`);
    out.push(`                 ${n.tap.padEnd(6)} ${l(n.tap)}   vnet_hdr, queues ${n.queues}`);
    out.push(`                    ║ fd → vmwrapper → QEMU ${n.model}`);
    const addrs = [
      ...(v4 ? [`${n.ip}/${n.prefixLen}`] : []),
      ...(v6?.dhcp6.addresses ?? n.ipv6 ?? []).map((a) => `${a}/128`),
    ];
    const gws = [...(n.gateway ? [n.gateway] : []), ...(v6?.ra.router ? [v6.ra.router] : [])];
    out.push(
      `                 guest  ${n.mac}  ${addrs.length ? addrs.join(' ') : 'L2 only, no address handed over'}${gws.length ? `  gw ${gws.join(' ')}` : ''}  mtu ${n.mtu}`,
    );
    if (n.l2Only) return;
    if (v4) {
      out.push(`  lease: ${leaseText}`);
      const counters = server as Partial<DhcpCounters> | undefined;
      if (counters?.received !== undefined) {
        const c = dhcpSummary(counters as DhcpCounters);
        out.push(
          `  DHCP: received ${c.received}, sent ${c.offer} offer ${c.ack} ack ${c.nak} nak, ignored ${c.ignored}`,
        );
      }
    }
    if (v6) out.push(...renderIpv6(v6));
    const suppressed = server?.logLinesSuppressed ?? 0;
    if (suppressed > 0) out.push(`  DHCP log lines the guest caused, left out by the rate limit: ${suppressed}`);
    if (v4)
      out.push(
        `  option 121: ${n.routes.map((r) => (r.gw === '0.0.0.0' ? `${r.dst} on-link` : `${r.dst} via ${r.gw}`)).join(', ')}${more('routes')}`,
      );
    if (n.unexpressible.length) {
      out.push(`  NOT handed to the guest (${n.unexpressible.length + (n.omitted?.unexpressible ?? 0)}):`);
      for (const u of n.unexpressible) out.push(`    ${describeRoute(u.route, n.veth)}: ${u.reason}`);
    }
    if (n.unrestorable?.length) {
      out.push(`  NOT restorable at teardown (${n.unrestorable.length + (n.omitted?.unrestorable ?? 0)}):`);
      for (const u of n.unrestorable) out.push(`    ${describeRoute(u.route, n.veth)}: ${u.reason}`);
    }
    if (n.warnings.length) out.push(`  warnings: ${n.warnings.join('; ')}${more('warnings')}`);
  });
  if (s.fence) {
    out.push('');
    // only the rules that dropped something; the rest in one line (`status --json` has all)
    const hit = s.fence.filter((f) => f.packets > 0);
    out.push(`  fence: ${s.fence.length} drop rules, ${hit.length ? `${hit.length} with drops:` : 'nothing dropped'}`);
    for (const f of hit)
      out.push(`    ${f.name.padEnd(36)} ${String(f.packets).padStart(8)} pkts ${String(f.bytes).padStart(10)} bytes`);
  }
  return out.join('\n');
}

/** The node-wide series as "name{labels} value" lines, the zero ones of labelled metrics left out. */
export function renderStats(metrics: StatsMetric[]): string {
  const out: string[] = [];
  for (const m of metrics.filter((x) => x.name.startsWith('tapwire_'))) {
    for (const v of m.values) {
      const labels = Object.entries(v.labels)
        .filter(([k]) => k !== 'le')
        .map(([k, x]) => `${k}="${String(x)}"`)
        .join(',');
      const name = v.metricName ?? m.name;
      if (m.type === 'histogram' && !name.endsWith('_count') && !name.endsWith('_sum')) continue;
      if (labels && v.value === 0 && m.type !== 'gauge') continue;
      out.push(`${name}${labels ? `{${labels}}` : ''} ${v.value}`);
    }
  }
  return out.join('\n');
}

async function main(): Promise<number> {
  const { flags, rest } = parseFlags(process.argv.slice(2), FLAGS);
  const [cmd, arg] = rest;
  if (flags.help || !cmd) {
    process.stdout.write(usage('tapctl COMMAND', FLAGS) + HELP);
    return cmd || flags.help ? 0 : 2;
  }
  const client = new TapmanagerClient(String(flags.socket));
  const json = !!flags.json;
  const print = (v: unknown, text: () => string): void => {
    process.stdout.write(json ? `${JSON.stringify(v, null, 2)}\n` : `${text()}\n`);
  };
  try {
    switch (cmd) {
      case 'list': {
        const l = (await client.list()) as { sandboxId: string; state: string; ips: string[]; netnsPath: string }[];
        print(l, () =>
          l.length === 0
            ? 'no sandboxes'
            : l.map((s) => `${s.sandboxId}  ${s.state}  ${s.ips.join(',')}  ${s.netnsPath}`).join('\n'),
        );
        return 0;
      }
      case 'describe':
      case 'status': {
        const s = (await client.status(need(arg, 'SANDBOX_ID'))) as BoundedStatus;
        print(s, () => (cmd === 'describe' ? renderDescribe(s) : JSON.stringify(s, null, 2)));
        return 0;
      }
      case 'setup': {
        const nicsFile = flags.nics as string | undefined;
        const readJson = (f: string): unknown => JSON.parse(fs.readFileSync(f, 'utf8'));
        const r = await client.setup({
          sandboxId: need(arg, 'SANDBOX_ID'),
          netnsPath: need(flags.netns as string | undefined, '--netns'),
          ...(nicsFile
            ? { nics: readJson(nicsFile) as NicRequest[] }
            : { cniResult: readJson(need(flags['cni-result'] as string | undefined, '--cni-result')) as CniResult }),
          ...(flags.hostname ? { hostname: String(flags.hostname) } : {}),
          ...(flags.queues !== undefined ? { queues: Number(flags.queues) } : {}),
        });
        print(r, () =>
          [
            `NET_KEY=${r.netKey}`,
            ...r.nics.map(
              (n) =>
                `NIC ${n.name ? `${n.name} ` : ''}${n.tap} mac=${n.mac} ${n.ip !== undefined ? `ip=${n.ip}/${n.prefixLen}` : 'l2-only'} model=${n.model} queues=${n.queues}`,
            ),
          ].join('\n'),
        );
        return 0;
      }
      case 'interfaces': {
        const s = (await client.status(need(arg, 'SANDBOX_ID'))) as BoundedStatus;
        const xml = renderInterfaces(s);
        print({ sandboxId: s.sandboxId, interfaces: xml.split(/\n(?=<)/) }, () => xml);
        return 0;
      }
      case 'stats': {
        const r = await client.stats();
        print(r, () => renderStats(r.metrics));
        return 0;
      }
      case 'revoke': {
        const r = await client.revoke(need(arg, 'SANDBOX_ID'));
        print(r, () =>
          r.revoked.length
            ? r.revoked.map((t) => `${t.tap}: ${t.attached} queue file(s) detached`).join('\n')
            : 'nothing held',
        );
        return 0;
      }
      case 'teardown': {
        const r = await client.teardown(need(arg, 'SANDBOX_ID'));
        print(r, () => (r.errors.length ? `teardown errors:\n${r.errors.join('\n')}` : 'torn down'));
        return r.errors.length ? 1 : 0;
      }
      default:
        process.stderr.write(`tapctl: unknown command ${JSON.stringify(cmd)}\n${HELP}`);
        return 2;
    }
  } finally {
    client.close();
  }
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined || v === '') throw new Error(`missing ${what}`);
  return v;
}

if (require.main === module) {
  // exitCode, not exit(): a long listing still in the stdout pipe would be cut off
  main().then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`tapctl: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
