// The servers the DHCP bench measures (bench/dhcp.ts), each started for its sandboxes and
// ready once every one of them answers an INFORM: tapwire's DhcpServers in one process (as in
// the daemon: bench/dhcp-serve.ts), the Node floor (the same process answering with copies),
// and dnsmasq, one process per sandbox (as the reference plumber runs it).
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { MessageType } from '../src/dhcp/constants';
import type { DhcpTestClient } from '../test/fixtures/dhcp-client';
import type { DhcpProbe } from './dhcp-probe-driver';
import { SERVER_ID, type Sandbox } from './dhcp-topology';
import { DNSMASQ_DHCP_ON_BR0 } from './dnsmasq';
import { track } from './resources';

const SERVE = path.resolve(__dirname, 'dhcp-serve.js');

/** What a server is started for: its many-sandbox set with the bench's clients there, and its probe's sandbox. */
export interface ServerSite {
  sandboxes: Sandbox[];
  clients: DhcpTestClient[];
  probeSandbox?: Sandbox;
  probe?: DhcpProbe;
  /**
   * The CPU list the servers run on from their spawn (taskset, which execs: the pid is the
   * server's), so that a server's start and warm-up run where it then serves; pinned only once
   * started, a Node server's first exchange on that CPU took 0.7-1.3 ms, dnsmasq's 0.2 (session 15)
   */
  cpu?: string;
}

/** argv run under `taskset -c cpu` when the site has a CPU */
const onCpu = (site: ServerSite, argv: string[]): [string, string[]] =>
  site.cpu === undefined ? [argv[0]!, argv.slice(1)] : ['taskset', ['-c', site.cpu, ...argv]];

/** What dhcp-serve.ts records with TWB_DHCP_TRACE (times in CLOCK_MONOTONIC ms). */
export interface ServerTrace {
  gc: { start: number; ms: number; kind: number }[];
  loopDelay: { p50: number; p99: number; max: number };
  elu: number;
}

export interface Running {
  /** pids[0] is the process answering the probe */
  pids: number[];
  /** RSS (KB) of tapwire's process before any server */
  baseKb?: number;
  stop(): Promise<void>;
  /** with TWB_DHCP_TRACE: the server's GC pauses and loop delay since the last call */
  trace?(): Promise<ServerTrace | null>;
}

/** The site's sandboxes, its probe's last. */
const served = (site: ServerSite): Sandbox[] => [...site.sandboxes, ...(site.probeSandbox ? [site.probeSandbox] : [])];

function waitExit(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => p.once('exit', () => r()));
}

/**
 * Ready = every sandbox's server answers an INFORM (binds nothing) on its bridge, the probe's
 * included; `dead(i)` says why sandbox i's server (i = sandboxes.length: the probe's) can no
 * longer answer. The same for every server: dnsmasq has no other readiness signal.
 */
async function answersInform(site: ServerSite, dead: (i: number) => string | undefined): Promise<void> {
  await Promise.all([
    site.probe?.inform().catch((e: Error) => {
      throw new Error(dead(site.sandboxes.length) ?? e.message);
    }),
    ...site.clients.map(async (c, i) => {
      for (let t = 0; t < 100; t++) {
        const why = dead(i);
        if (why) throw new Error(why);
        const inform = c.build(MessageType.INFORM, { ciaddr: site.sandboxes[i]!.lease.ip });
        if (await c.exchange(inform, SERVER_ID, 67, 100)) return;
      }
      throw new Error(`the server of sandbox ${i} never answered an INFORM`);
    }),
  ]);
}

/** tapwire's servers (or with echo, the Node floor) in one dhcp-serve process. */
export async function startNode(
  site: ServerSite,
  dir: string,
  o: { echo: boolean; nodeFlags: string[] },
): Promise<Running> {
  const conf = path.join(dir, `servers-${o.echo ? 'echo' : 'tapwire'}.json`);
  const list = served(site);
  fs.writeFileSync(conf, JSON.stringify(list.map((s) => ({ netns: s.ns.path, lease: s.lease }))));
  const p = track(
    spawn(...onCpu(site, [process.execPath, ...o.nodeFlags, SERVE, conf, ...(o.echo ? ['--echo'] : [])]), {
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
  await answersInform(site, () =>
    p.exitCode !== null || p.signalCode !== null ? `dhcp-serve exited ${p.exitCode ?? p.signalCode}` : undefined,
  );
  return {
    pids: [p.pid!],
    baseKb,
    stop: async () => {
      p.kill('SIGTERM');
      await waitExit(p);
    },
    // Only when tracing: asked at the start and the end of every turn, the server's answer (a
    // line read, a JSON written, 0.5-1 ms after its sleep) fell on each turn's first exchanges,
    // of tapwire and the Node floor but not of dnsmasq (session 15)
    ...(process.env.TWB_DHCP_TRACE
      ? {
          trace: () =>
            new Promise<ServerTrace | null>((resolve) => {
              traces.push(resolve);
              p.stdin!.write('trace\n');
            }),
        }
      : {}),
  };
}

function dnsmasqArgs(s: Sandbox, dir: string): string[] {
  const l = s.lease;
  const netaddr = l.ip.replace(/\.\d+$/, '.0');
  return [
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
    `--dhcp-leasefile=${path.join(dir, `dnsmasq-${s.ns.name}.leases`)}`,
    '--pid-file=',
  ];
}

/** One dnsmasq per sandbox; pids[0] is the probe's (if the site has a probe). */
export async function startDnsmasq(site: ServerSite, dir: string): Promise<Running> {
  const list = served(site);
  const stderr: string[] = list.map(() => '');
  const procs = list.map((s, i) => {
    const p = track(
      spawn(...onCpu(site, ['ip', 'netns', 'exec', s.ns.name, 'dnsmasq', ...dnsmasqArgs(s, dir)]), {
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    p.stderr!.on('data', (d: Buffer) => (stderr[i] = (stderr[i]! + d.toString()).slice(-500)));
    return p;
  });
  await answersInform(site, (i) =>
    procs[i]!.exitCode !== null ? `dnsmasq ${i} exited ${procs[i]!.exitCode}: ${stderr[i]!.trim()}` : undefined,
  );
  return {
    pids: (site.probeSandbox ? [procs.at(-1)!, ...procs.slice(0, -1)] : procs).map((p) => p.pid!),
    stop: async () => {
      for (const p of procs) p.kill('SIGTERM');
      await Promise.all(procs.map(waitExit));
    },
  };
}
