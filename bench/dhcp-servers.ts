// The DHCP bench's sandboxes and servers: each sandbox is a netns with br0 (169.254.254.2/24)
// and a veth "tap0" whose peer c<i> sits in one client netns, where the in-process test
// client binds a socket to it. tapwire's servers all live in one child process
// (dist/bench/dhcp-serve.js, as in the daemon); dnsmasq runs one process per sandbox (as the
// reference plumber does). Every server counts as started once each of its sandboxes answers
// an INFORM.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { MessageType } from '../src/dhcp/constants';
import type { StaticLease } from '../src/dhcp/server';
import { DhcpTestClient } from '../test/fixtures/dhcp-client';
import { makeLease } from '../test/fixtures/dhcp-net';
import type { TestNetns } from '../test/helpers/netns';
import { DNSMASQ_DHCP_ON_BR0 } from './dnsmasq';
import { benchNetns, breathe, track } from './resources';

const ROOT = path.resolve(__dirname, '..', '..');
const SERVE = path.join(ROOT, 'dist/bench/dhcp-serve.js');
export const SERVER_ID = '169.254.254.2';

export interface Sandbox {
  ns: TestNetns;
  ifname: string;
  lease: StaticLease;
}

export interface Topology {
  client: TestNetns;
  sandboxes: Sandbox[];
}

const hex = (n: number): string => n.toString(16).padStart(2, '0');

function leaseFor(i: number): StaticLease {
  const net = `10.${100 + Math.floor(i / 250)}.${i % 250}`;
  return makeLease({
    mac: `02:42:0a:${hex(i >> 8)}:${hex(i & 255)}:05`,
    ip: `${net}.5`,
    routers: [`${net}.1`],
    classlessRoutes: [
      { dst: `${SERVER_ID}/32`, gw: '0.0.0.0' },
      { dst: `${net}.1/32`, gw: '0.0.0.0' },
      { dst: '10.96.0.0/12', gw: `${net}.1` },
      { dst: '0.0.0.0/0', gw: `${net}.1` },
    ],
    hostname: `pod-${i}`,
  });
}

function ipBatch(ns: TestNetns, lines: string[]): void {
  execFileSync('ip', ['-n', ns.name, '-batch', '-'], {
    input: `${lines.join('\n')}\n`,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export async function buildTopology(n: number): Promise<Topology> {
  const client = benchNetns('dcli');
  const sandboxes: Sandbox[] = [];
  const clientLines: string[] = [];
  for (let i = 0; i < n; i++) {
    const ns = benchNetns('dsrv');
    const lease = leaseFor(i);
    const ifname = `c${i}`;
    const brMac = `02:42:a9:fe:${hex(i >> 8)}:${hex(i & 255)}`;
    ipBatch(ns, [
      `link add br0 address ${brMac} type bridge`,
      `addr add ${SERVER_ID}/24 dev br0`,
      'link set br0 up',
      `link add tap0 mtu 1450 type veth peer name ${ifname} netns ${client.name}`,
      'link set tap0 master br0 up',
      // as tapmanager does: the guest's address resolves without ARP from br0
      `neigh replace ${lease.ip} lladdr ${lease.mac} dev br0 nud permanent`,
    ]);
    clientLines.push(
      `link set ${ifname} address ${lease.mac} mtu 1450 up`,
      `addr add ${lease.ip}/24 dev ${ifname} noprefixroute`,
      // and the server's from the client: past ~1000 sandboxes the kernel's ARP table (its
      // gc_thresh3, 1024 entries for all namespaces) would refuse the client's entries
      `neigh replace ${SERVER_ID} lladdr ${brMac} dev ${ifname} nud permanent`,
    );
    sandboxes.push({ ns, ifname, lease });
    await breathe();
  }
  ipBatch(client, clientLines);
  return { client, sandboxes };
}

export interface Running {
  name: string;
  pids: number[];
  stop(): Promise<void>;
  /** with TWB_DHCP_TRACE: the server's GC pauses and loop delay since the last call */
  trace?(): Promise<ServerTrace | null>;
}

/** What dhcp-serve.ts records with TWB_DHCP_TRACE (times in CLOCK_MONOTONIC ms). */
export interface ServerTrace {
  gc: { start: number; ms: number; kind: number }[];
  loopDelay: { p50: number; p99: number; max: number };
  elu: number;
}

function waitExit(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => p.once('exit', () => r()));
}

export async function startTapwire(
  topo: Topology,
  dir: string,
  clients: DhcpTestClient[],
  nodeFlags: string[] = [],
  echo = false,
): Promise<Running & { baseKb: number }> {
  const conf = path.join(dir, echo ? 'echo.json' : 'servers.json');
  const list = echo ? topo.sandboxes.slice(0, 1) : topo.sandboxes;
  fs.writeFileSync(conf, JSON.stringify(list.map((s) => ({ netns: s.ns.path, lease: s.lease }))));
  const p = track(
    spawn(process.execPath, [...nodeFlags, SERVE, conf, ...(echo ? ['--echo'] : [])], {
      stdio: ['pipe', 'pipe', 'inherit'],
      cwd: dir,
    }),
  );
  let baseKb = NaN;
  const traces: ((t: ServerTrace | null) => void)[] = [];
  await new Promise<void>((resolve, reject) => {
    const rl = readline.createInterface({ input: p.stdout! });
    rl.on('line', (l) => {
      if (l.startsWith('trace ')) traces.shift()?.(JSON.parse(l.slice(6)) as ServerTrace | null);
      else if (l.startsWith('base ')) baseKb = Number(l.slice(5));
      else if (l.startsWith('ready ')) resolve();
      else process.stderr.write(`dhcp-serve: ${l}\n`); // e.g. --trace-gc
    });
    p.once('exit', (c) => reject(new Error(`dhcp-serve exited ${c}`)));
  });
  await answersInform(echo ? 'Node floor' : 'tapwire', topo, clients.slice(0, list.length), () =>
    p.exitCode !== null || p.signalCode !== null ? `dhcp-serve exited ${p.exitCode ?? p.signalCode}` : undefined,
  );
  return {
    name: 'tapwire',
    pids: [p.pid!],
    baseKb,
    stop: async () => {
      p.kill('SIGTERM');
      await waitExit(p);
    },
    trace: () =>
      new Promise((resolve) => {
        traces.push(resolve);
        p.stdin!.write('trace\n');
      }),
  };
}

/**
 * Ready = every sandbox's server answers an INFORM (binds nothing) on its bridge; `dead(i)`
 * says why sandbox i's server can no longer answer. The same for every server: dnsmasq has no
 * other readiness signal, and before tapwire's servers were probed this way too, only dnsmasq's
 * cold block followed 1000 exchanges of the client (after a Node server's start the client had
 * sat idle and its heap was copy-on-write after the fork: its CPU per round in the first 100
 * rounds was ~3x that after dnsmasq's start, TWB_DHCP_COLD_TRACE).
 */
async function answersInform(
  name: string,
  topo: Topology,
  clients: DhcpTestClient[],
  dead: (i: number) => string | undefined,
): Promise<void> {
  await Promise.all(
    clients.map(async (c, i) => {
      for (let t = 0; t < 100; t++) {
        const why = dead(i);
        if (why) throw new Error(why);
        const r = await c.exchange(
          c.build(MessageType.INFORM, { ciaddr: topo.sandboxes[i]!.lease.ip }),
          SERVER_ID,
          67,
          100,
        );
        if (r) return;
      }
      throw new Error(`${name}: the server of sandbox ${i} (${topo.sandboxes[i]!.ns.name}) never answered an INFORM`);
    }),
  );
}

function dnsmasqArgs(s: Sandbox, dir: string, i: number): string[] {
  const l = s.lease;
  const netaddr = l.ip.replace(/\.\d+$/, '.0');
  const a = [
    ...DNSMASQ_DHCP_ON_BR0,
    '--except-interface=lo',
    '--dhcp-authoritative',
    '--no-ping',
    `--shared-network=br0,${netaddr}`,
    `--dhcp-range=${netaddr},static,255.255.255.0,1h`,
    `--dhcp-host=${l.mac},${l.ip},${l.hostname},1h`,
    `--dhcp-option=option:router,${l.routers.join(',')}`,
    `--dhcp-option=option:mtu,${l.mtu}`,
    `--dhcp-option=option:classless-static-route,${l.classlessRoutes.map((r) => `${r.dst},${r.gw}`).join(',')}`,
    `--dhcp-option=option:dns-server,${l.dns.join(',')}`,
    `--dhcp-option=option:domain-search,${l.search.join(',')}`,
    `--dhcp-option=option:domain-name,${l.domain}`,
    `--dhcp-leasefile=${path.join(dir, `dnsmasq-${i}.leases`)}`,
    '--pid-file=',
  ];
  return a;
}

export async function startDnsmasq(topo: Topology, dir: string, clients: DhcpTestClient[]): Promise<Running> {
  const stderr: string[] = topo.sandboxes.map(() => '');
  const procs = topo.sandboxes.map((s, i) => {
    const p = track(
      spawn('ip', ['netns', 'exec', s.ns.name, 'dnsmasq', ...dnsmasqArgs(s, dir, i)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    p.stderr!.on('data', (d: Buffer) => (stderr[i] = (stderr[i]! + d.toString()).slice(-500)));
    return p;
  });
  await answersInform('dnsmasq', topo, clients, (i) =>
    procs[i]!.exitCode !== null ? `dnsmasq ${i} exited ${procs[i]!.exitCode}: ${stderr[i]!.trim()}` : undefined,
  );
  return {
    name: 'dnsmasq',
    pids: procs.map((p) => p.pid!),
    stop: async () => {
      for (const p of procs) p.kill('SIGTERM');
      await Promise.all(procs.map(waitExit));
    },
  };
}
