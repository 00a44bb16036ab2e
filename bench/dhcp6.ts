// Bench suite: DHCPv6 reply latency, tapwire's server against dnsmasq serving the same static
// address (by the client's DUID), in the same run. One "pod" netns with br0 and a veth tap0
// whose peer c0 sits in a client netns; the client is in-process (a UDP socket on c0:546 made
// and read through the addon, as the server's is). tapwire's server runs in this process too,
// so its numbers carry the client's event loop: conservative. Measured: SOLICIT->ADVERTISE and
// REQUEST->REPLY, p50/p99. Runnable alone: `node dist/bench/dhcp6.js [rounds]`.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';
import { MessageType, Opt6 } from '../src/dhcp6/constants';
import { Dhcp6Message } from '../src/dhcp6/message';
import { DuidOption, IaOption, OroOption, UintOption } from '../src/dhcp6/options';
import { Dhcp6Server } from '../src/dhcp6/server';
import { sock6Close, sock6Send, sock6Watch, udp6SocketBoundToDevice, withNetns } from '../src/native';
import type { TestNetns } from '../test/helpers/netns';
import { DNSMASQ_DHCP_ON_BR0 } from './dnsmasq';
import { benchDir, benchNetns, cleanupAll, dropDir, dropNetns, installCleanup, track } from './resources';
import { fmt, ratio, renderTable, summarize, SuiteResult, Table } from './table';

const MAC = '02:42:0a:4d:00:05';
const ADDR = 'fd00:77::5';
const BRIDGE_MAC = '02:54:77:00:00:01';
const CLIENT_DUID = DuidOption.linkLayer(Buffer.from(MAC.split(':').map((h) => parseInt(h, 16)))).bytes;

interface Client {
  ask(m: Dhcp6Message): Promise<{ reply: Dhcp6Message; ms: number } | undefined>;
  close(): void;
}

function client(ns: TestNetns): Client {
  const fd = withNetns(ns.path, () => udp6SocketBoundToDevice('c0', 546));
  let waiting: ((m: Dhcp6Message) => void) | undefined;
  let xid = 0;
  sock6Watch(fd, (data) => {
    try {
      const m = Dhcp6Message.decode(data);
      if (m.xid === xid) waiting?.(m);
    } catch {
      /* not ours */
    }
  });
  return {
    ask: (m) =>
      new Promise((resolve) => {
        xid = m.xid;
        const t0 = process.hrtime.bigint();
        const timer = setTimeout(() => resolve(undefined), 1000);
        waiting = (r) => {
          clearTimeout(timer);
          waiting = undefined;
          resolve({ reply: r, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
        };
        sock6Send(fd, 'ff02::1:2', 547, '::', m.encode());
      }),
    close: () => sock6Close(fd),
  };
}

function solicit(xid: number): Dhcp6Message {
  return new Dhcp6Message(MessageType.SOLICIT, xid)
    .add(Opt6.CLIENTID, CLIENT_DUID)
    .add(Opt6.ELAPSED_TIME, new UintOption(2, 0))
    .add(Opt6.ORO, new OroOption([Opt6.DNS_SERVERS, Opt6.DOMAIN_LIST]))
    .add(Opt6.IA_NA, new IaOption(Opt6.IA_NA, 1, 0, 0));
}

function request(xid: number, adv: Dhcp6Message): Dhcp6Message {
  return new Dhcp6Message(MessageType.REQUEST, xid)
    .add(Opt6.CLIENTID, CLIENT_DUID)
    .add(Opt6.SERVERID, adv.raw(Opt6.SERVERID)!)
    .add(Opt6.ELAPSED_TIME, new UintOption(2, 0))
    .add(Opt6.ORO, new OroOption([Opt6.DNS_SERVERS, Opt6.DOMAIN_LIST]))
    .add(Opt6.IA_NA, adv.raw(Opt6.IA_NA)!);
}

async function measure(c: Client, rounds: number): Promise<{ adv: number[]; reply: number[]; lost: number }> {
  const out = { adv: [] as number[], reply: [] as number[], lost: 0 };
  for (let k = 0; k < rounds; k++) {
    const a = await c.ask(solicit((k * 2 + 1) & 0xffffff));
    if (a?.reply.type !== MessageType.ADVERTISE) {
      out.lost++;
      continue;
    }
    out.adv.push(a.ms);
    const r = await c.ask(request((k * 2 + 2) & 0xffffff, a.reply));
    if (r?.reply.type === MessageType.REPLY) out.reply.push(r.ms);
    else out.lost++;
  }
  return out;
}

function waitExit(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => p.once('exit', () => r()));
}

export async function runDhcp6Suite(opts: { rounds?: number } = {}): Promise<SuiteResult> {
  const rounds = opts.rounds ?? 500;
  const dir = benchDir('dhcp6');
  const pod = benchNetns('d6srv');
  const cli = benchNetns('d6cli');
  try {
    for (const ns of [pod, cli]) ns.sh('sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0');
    execFileSync('ip', ['-n', pod.name, '-batch', '-'], {
      input: [
        `link add br0 address ${BRIDGE_MAC} type bridge`,
        'link set br0 up',
        // dnsmasq serves DHCPv6 only on a link where it has an address of the range
        'addr add fd00:77::1/64 dev br0 nodad',
        `link add tap0 type veth peer name c0 netns ${cli.name}`,
        'link set tap0 master br0 up',
      ].join('\n'),
    });
    cli.ip('link', 'set', 'c0', 'address', MAC, 'up');
    await new Promise((r) => setTimeout(r, 300));
    const c = client(cli);
    const results: Record<string, { adv: number[]; reply: number[]; lost: number }> = {};
    // tapwire
    const server = await Dhcp6Server.start({
      ifname: 'br0',
      netns: pod.path,
      serverMac: BRIDGE_MAC,
      lease: { addresses: [ADDR], dns: ['fd00:96::a'], search: ['svc.cluster.local', 'cluster.local'] },
      rapidCommit: false,
    });
    await measure(c, 20);
    results.tapwire = await measure(c, rounds);
    await server.close();
    // dnsmasq, the same address for the same DUID
    const dm = track(
      spawn(
        'ip',
        [
          'netns',
          'exec',
          pod.name,
          'dnsmasq',
          ...DNSMASQ_DHCP_ON_BR0,
          '--dhcp-authoritative',
          '--dhcp-range=fd00:77::,static,64,1h',
          `--dhcp-host=id:${CLIENT_DUID.toString('hex').replace(/(..)(?!$)/g, '$1:')},[${ADDR}]`,
          '--dhcp-option=option6:dns-server,[fd00:96::a]',
          '--dhcp-option=option6:domain-search,svc.cluster.local,cluster.local',
          `--dhcp-leasefile=${path.join(dir, 'dnsmasq.leases')}`,
          '--pid-file=',
        ],
        { stdio: 'ignore' },
      ),
    );
    for (let t = 0; t < 50 && !(await c.ask(solicit(0xabcdef))); t++) {
      if (dm.exitCode !== null) throw new Error(`dnsmasq exited ${dm.exitCode}`);
    }
    await measure(c, 20);
    results.dnsmasq = await measure(c, rounds);
    dm.kill('SIGTERM');
    await waitExit(dm);
    c.close();
    const t = summarize(results.tapwire.adv);
    const tr = summarize(results.tapwire.reply);
    const d = summarize(results.dnsmasq.adv);
    const dr = summarize(results.dnsmasq.reply);
    const table: Table = {
      title: 'DHCPv6: one client, tapwire vs dnsmasq serving the same static address (ms)',
      columns: ['exchange', 'tapwire p50', 'tapwire p99', 'dnsmasq p50', 'dnsmasq p99', 'p50 ratio', 'lost (t/d)'],
      rows: [
        [
          'SOLICIT->ADVERTISE',
          fmt(t.p50, 3),
          fmt(t.p99, 3),
          fmt(d.p50, 3),
          fmt(d.p99, 3),
          ratio(t.p50, d.p50),
          `${results.tapwire.lost}/${results.dnsmasq.lost}`,
        ],
        ['REQUEST->REPLY', fmt(tr.p50, 3), fmt(tr.p99, 3), fmt(dr.p50, 3), fmt(dr.p99, 3), ratio(tr.p50, dr.p50), ''],
      ],
      notes: [
        `${rounds} rounds each after 20 warm-up; ratio < 1: tapwire faster. tapwire's server shares the client's process.`,
      ],
    };
    return {
      tables: [table],
      targets: [],
      data: { rounds, tapwire: { adv: t, reply: tr }, dnsmasq: { adv: d, reply: dr } },
    };
  } finally {
    dropNetns(pod, cli);
    dropDir(dir);
  }
}

if (require.main === module) {
  installCleanup();
  runDhcp6Suite({ rounds: Number(process.argv[2] ?? 500) })
    .then((r) => {
      for (const t of r.tables) console.log(renderTable(t));
    })
    .catch((e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    })
    .finally(() => cleanupAll());
}
