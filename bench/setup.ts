// Bench suites 1 and 2: sandbox network setup/teardown through the tapmanager daemon
// (CNI results prepared beforehand) against the reference plumber (bench/reference-plumber.sh:
// iproute2 + nft + dnsmasq) and the bare netlink floor of the same link operations; and the
// daemon's cost at 1..1000 live sandboxes against one dnsmasq per sandbox.
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NetlinkHandle } from '../src/net/netlink';
import { closeFd, ifIndex, openTap, withNetns } from '../src/native';
import { TapmanagerClient } from '../src/tapmanager/client';
import type { SetupRequest } from '../src/tapmanager/protocol';
import { applyFence } from '../src/tapmanager/fence';
import { makePod, Pod } from '../test/helpers/pod';
import { benchDir, benchNetns, breathe, dropDir, dropNetns, track } from './resources';
import { atLeast, atMost, fmt, ratio, summarize, SuiteResult, Target } from './table';

const ROOT = path.resolve(__dirname, '..', '..');
const REFERENCE_PLUMBER = path.join(ROOT, 'bench', 'reference-plumber.sh');
const REFERENCE_TOOLS = ['bash', 'ip', 'nft', 'dnsmasq', 'ss', 'python3'];

/** Why the reference rows cannot run here (a tool it needs is missing), or undefined. */
export function referenceSkipReason(): string | undefined {
  const missing = REFERENCE_TOOLS.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  return missing.length ? `the reference plumber needs ${missing.join(', ')}` : undefined;
}

export interface Daemon {
  proc: ChildProcess;
  client: TapmanagerClient;
  dir: string;
  /** HOST:PORT of the metrics endpoint, when started with --metrics-address */
  metrics?: string;
}

/** The real tapmanager daemon from dist/, on sockets in a bench dir; extra node flags e.g. --cpu-prof. */
export async function startDaemon(nodeFlags: string[] = [], args: string[] = []): Promise<Daemon> {
  const dir = benchDir('tapmanager');
  const sock = path.join(dir, 'control.sock');
  const proc = track(
    spawn(
      process.execPath,
      [
        ...nodeFlags,
        path.join(ROOT, 'dist/src/tapmanager/main.js'),
        '--state-dir',
        path.join(dir, 'state'),
        '--control-socket',
        sock,
        '--fd-socket',
        path.join(dir, 'fd.sock'),
        ...args,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir },
    ),
  );
  let log = '';
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('"msg":"ready"')) resolve();
    });
    proc.on('exit', (c) => reject(new Error(`tapmanager exited ${c}: ${log}`)));
  });
  // TWB_DAEMON_LOG=file: the daemon's log lines after "ready" go there (else they are dropped)
  if (process.env.TWB_DAEMON_LOG) proc.stderr!.pipe(fs.createWriteStream(process.env.TWB_DAEMON_LOG, { flags: 'a' }));
  else proc.stderr!.resume();
  const metrics = /"metrics":"([^"]+)"/.exec(log)?.[1];
  return { proc, client: new TapmanagerClient(sock), dir, ...(metrics ? { metrics } : {}) };
}

export async function stopDaemon(d: Daemon, keepDir = false): Promise<void> {
  d.client.close();
  if (d.proc.exitCode === null && d.proc.signalCode === null) {
    d.proc.kill('SIGTERM');
    await new Promise((r) => d.proc.once('exit', r));
  }
  if (!keepDir) dropDir(d.dir);
}

/** n timed runs of fn, in ms. */
async function timesMs(n: number, fn: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(ms(t0));
  }
  return out;
}

function median(samples: number[]): number {
  return summarize(samples).p50;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

let netCounter = 0;
/** A CNI-shaped pod (bridge cni0 in its own node netns), in bench-named namespaces. */
export function benchPod(): Pod {
  const net = 1 + (netCounter++ % 250);
  const node = benchNetns('node');
  const pod = benchNetns('pod');
  node.ip('link', 'add', 'cni0', 'mtu', '1450', 'type', 'bridge');
  node.ip('addr', 'add', `10.${net}.0.1/24`, 'dev', 'cni0');
  node.ip('link', 'set', 'cni0', 'up');
  return makePod({ net, node, pod });
}

/** As benchPod, dual-stack the Calico way: fd00:N::2/64 and `default via fe80::1` (fe80::1 on cni0). */
function benchPod6(): Pod {
  const net = 1 + (netCounter++ % 250);
  const node = benchNetns('node');
  const pod = benchNetns('pod');
  node.ip('link', 'add', 'cni0', 'mtu', '1450', 'type', 'bridge');
  node.ip('addr', 'add', `10.${net}.0.1/24`, 'dev', 'cni0');
  node.ip('addr', 'add', 'fe80::1/64', 'dev', 'cni0', 'nodad');
  node.ip('link', 'set', 'cni0', 'up');
  const p = makePod({ net, node, pod, ipv6: true });
  pod.ip('-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'eth0');
  return p;
}

async function pods(n: number, dual = false): Promise<Pod[]> {
  const out: Pod[] = [];
  // one node netns per pod keeps the bench free of cross-pod interference
  for (let i = 0; i < n; i++) {
    out.push(dual ? benchPod6() : benchPod());
    await breathe();
  }
  return out;
}

function dropPods(ps: Pod[]): void {
  for (const p of ps) dropNetns(p.pod, p.node);
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

async function timedSetups(
  d: Daemon,
  ps: Pod[],
  concurrency: number,
): Promise<{ setup: number[]; teardown: number[]; wallMs: number }> {
  const setup: number[] = [];
  const teardown: number[] = [];
  const ids = ps.map(() => `b-${randomBytes(6).toString('hex')}`);
  const w0 = process.hrtime.bigint();
  for (let i = 0; i < ps.length; i += concurrency) {
    await Promise.all(
      ps.slice(i, i + concurrency).map(async (p, j) => {
        const t0 = process.hrtime.bigint();
        await d.client.setup({ sandboxId: ids[i + j]!, netnsPath: p.pod.path, cniResult: p.cniResult });
        setup.push(ms(t0));
      }),
    );
  }
  const wallMs = ms(w0);
  for (let i = 0; i < ps.length; i += concurrency) {
    await Promise.all(
      ps.slice(i, i + concurrency).map(async (_p, j) => {
        const t0 = process.hrtime.bigint();
        await d.client.teardown(ids[i + j]!);
        teardown.push(ms(t0));
      }),
    );
  }
  return { setup, teardown, wallMs };
}

/** The same link operations as a setup, as bare netlink calls in a tight loop. */
async function netlinkFloor(p: Pod): Promise<number> {
  const t0 = process.hrtime.bigint();
  const nl = NetlinkHandle.open(p.pod.path);
  const eth0 = (await nl.link('eth0'))!;
  await nl.delAddress(eth0.index, 'eth0', p.ip, 24);
  await nl.setLink(eth0.index, 'eth0', { up: false });
  await nl.setLink(eth0.index, 'eth0', { mac: '02:11:22:33:44:55' });
  await nl.createBridge('br0', { mtu: 1450, mac: '02:11:22:33:44:66' });
  const br = (await nl.link('br0'))!;
  await nl.addAddress(br.index, 'br0', '169.254.254.2', 24);
  withNetns(p.pod.path, () => openTap('tap0', { vnetHdr: true, persist: true })).forEach(closeFd);
  const tap = (await nl.link('tap0'))!;
  await nl.setLink(tap.index, 'tap0', { mtu: 1450, master: br.index });
  await nl.setLink(eth0.index, 'eth0', { master: br.index });
  await nl.setLink(tap.index, 'tap0', { up: true });
  await nl.setLink(eth0.index, 'eth0', { up: true });
  await nl.setLink(br.index, 'br0', { up: true });
  await nl.setNeighbor(br.index, 'br0', p.ip, p.mac);
  const t = ms(t0);
  nl.close();
  return t;
}

/**
 * The same link changes sent the way tapwire's build sends them (two flights of
 * pipelined requests, one request per link, indexes read in the namespace window), as
 * bare calls: what the kernel takes for a setup's links when nothing else is done.
 */
async function pipelinedFloor(p: Pod): Promise<number> {
  const t0 = process.hrtime.bigint();
  const nl = NetlinkHandle.open(p.pod.path);
  const eth0 = withNetns(p.pod.path, () => ifIndex('eth0'));
  await Promise.all([
    nl.delAddress(eth0, 'eth0', p.ip, 24),
    nl.createBridge('br0', { mtu: 1450, mac: '02:11:22:33:44:66', up: true }),
  ]);
  const [br, tap] = withNetns(p.pod.path, () => {
    openTap('tap0', { vnetHdr: true, persist: true }).forEach(closeFd);
    return [ifIndex('br0'), ifIndex('tap0')];
  });
  await Promise.all([
    nl.addAddress(br!, 'br0', '169.254.254.2', 24),
    nl.setLink(tap!, 'tap0', { mtu: 1450, master: br!, up: true }),
    nl.setLink(eth0, 'eth0', { mac: '02:11:22:33:44:55', master: br!, up: true }),
    nl.setNeighbor(br!, 'br0', p.ip, p.mac),
  ]);
  const t = ms(t0);
  nl.close();
  return t;
}

function referencePlumber(p: Pod, verb: 'setup' | 'teardown', runDir: string, resultFile: string): number {
  const t0 = process.hrtime.bigint();
  execFileSync('bash', [REFERENCE_PLUMBER, verb], {
    env: {
      ...process.env,
      E2E_ID: p.pod.name.slice(-6),
      E2E_PODNS: p.pod.name,
      E2E_CNI_RESULT: resultFile,
      E2E_RUN_DIR: runDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return ms(t0);
}

/** The fence alone (applyFence: one nf_tables netlink batch sent from a pool thread in the netns), on a pod already plumbed by netlinkFloor. */
async function fenceAlone(p: Pod): Promise<number> {
  const t0 = process.hrtime.bigint();
  await applyFence(p.pod.path, 'twbench', [{ bridge: 'br0', veth: 'eth0', tap: 'tap0', guestMac: p.mac }]);
  return ms(t0);
}

export interface SetupOptions {
  /** samples per concurrency level above 1 (default 20) */
  rounds?: number;
  /** samples of the interleaved 1-concurrent comparison: tapwire, both floors and fence each (default 60) */
  singleRounds?: number;
  /** reference plumber samples, spread over the interleaved rounds (default 10) */
  refRounds?: number;
  concurrency?: number[];
}

/** One reference plumber setup + teardown on a fresh pod, timed. */
function referenceRound(p: Pod): { setup: number; teardown: number } {
  const run = benchDir('ref');
  const resultFile = path.join(run, 'cni.json');
  fs.writeFileSync(resultFile, JSON.stringify(p.cniResult));
  try {
    const setup = referencePlumber(p, 'setup', path.join(run, 'd'), resultFile);
    return { setup, teardown: referencePlumber(p, 'teardown', path.join(run, 'd'), resultFile) };
  } finally {
    dropDir(run);
  }
}

/**
 * The 1-concurrent comparison, interleaved so that the machine's load falls on every
 * row alike: round i sets up one sandbox through the daemon, then runs the bare netlink
 * floor and the fence alone on another pod, the pipelined floor on a third, and every few
 * rounds one reference plumber setup + teardown. The daemon's sandboxes are torn down at the end, one at a time.
 */
async function interleavedSingle(
  d: Daemon,
  n: number,
  refRounds: number,
): Promise<{
  setup: number[];
  teardown: number[];
  floor: number[];
  pipelined: number[];
  fence: number[];
  refSetup: number[];
  refTeardown: number[];
  wallMs: number;
}> {
  const r = {
    setup: [] as number[],
    teardown: [] as number[],
    floor: [] as number[],
    pipelined: [] as number[],
    fence: [] as number[],
  };
  const refSetup: number[] = [];
  const refTeardown: number[] = [];
  const every = Math.max(1, Math.floor(n / Math.max(1, refRounds)));
  const ps = await pods(n);
  const floorPods = await pods(n);
  const pipePods = await pods(n);
  const ids = ps.map(() => `b-${randomBytes(6).toString('hex')}`);
  let wallMs = 0;
  try {
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await d.client.setup({ sandboxId: ids[i]!, netnsPath: ps[i]!.pod.path, cniResult: ps[i]!.cniResult });
      r.setup.push(ms(t0));
      wallMs += r.setup[i]!;
      r.floor.push(await netlinkFloor(floorPods[i]!));
      r.fence.push(await fenceAlone(floorPods[i]!));
      r.pipelined.push(await pipelinedFloor(pipePods[i]!));
      if (i % every === 0 && refSetup.length < refRounds) {
        const [rp] = await pods(1);
        try {
          const t = referenceRound(rp!);
          refSetup.push(t.setup);
          refTeardown.push(t.teardown);
        } finally {
          dropPods([rp!]);
        }
      }
    }
    for (const id of ids) {
      const t0 = process.hrtime.bigint();
      await d.client.teardown(id);
      r.teardown.push(ms(t0));
    }
  } finally {
    dropPods(ps);
    dropPods(floorPods);
    dropPods(pipePods);
  }
  return { ...r, refSetup, refTeardown, wallMs };
}

/** Suite 1: setup/teardown latency and throughput vs the reference plumber and the netlink floor. */
export async function runSetupSuite(opts: SetupOptions = {}): Promise<SuiteResult> {
  const rounds = opts.rounds ?? 20;
  const single = opts.singleRounds ?? 60;
  const rows: (string | number)[][] = [];
  const data: Record<string, unknown> = {};
  const refSkip = referenceSkipReason();
  if (refSkip) console.error(`bench: setup: reference plumber rows skipped: ${refSkip}`);
  const d = await startDaemon();
  let one;
  try {
    one = await interleavedSingle(d, single, refSkip ? 0 : (opts.refRounds ?? 10));
    const s = summarize(one.setup);
    const t = summarize(one.teardown);
    data.tapwire_c1 = { setup: s, teardown: t, setupsPerSec: (single / one.wallMs) * 1000 };
    rows.push([
      'tapwire (1 concurrent)',
      fmt(s.p50),
      fmt(s.p99),
      fmt(t.p50),
      fmt(t.p99),
      fmt((single / one.wallMs) * 1000, 1),
    ]);
    for (const c of (opts.concurrency ?? [1, 10, 100]).filter((x) => x > 1)) {
      const ps = await pods(Math.max(rounds, c));
      try {
        const r = await timedSetups(d, ps, c);
        const s = summarize(r.setup);
        const t = summarize(r.teardown);
        data[`tapwire_c${c}`] = { setup: s, teardown: t, setupsPerSec: (ps.length / r.wallMs) * 1000 };
        rows.push([
          `tapwire (${c} concurrent)`,
          fmt(s.p50),
          fmt(s.p99),
          fmt(t.p50),
          fmt(t.p99),
          fmt((ps.length / r.wallMs) * 1000, 1),
        ]);
      } finally {
        dropPods(ps);
      }
    }
    // dual-stack next to IPv4-only, sequential, blocks alternating so load drifts hit both
    const v4: number[] = [];
    const v6: number[] = [];
    for (let b = 0; b < 4; b++) {
      for (const dual of [false, true]) {
        const ps = await pods(Math.max(2, Math.ceil(rounds / 4)), dual);
        try {
          (dual ? v6 : v4).push(...(await timedSetups(d, ps, 1)).setup);
        } finally {
          dropPods(ps);
        }
      }
    }
    const s4 = summarize(v4);
    const s6 = summarize(v6);
    data.ipv4Only = s4;
    data.dualStack = s6;
    rows.push(['IPv4-only pod (sequential)', fmt(s4.p50), fmt(s4.p99), '-', '-', '-']);
    rows.push([
      `dual-stack pod (sequential; ${ratio(s6.p50, s4.p50)} of IPv4-only)`,
      fmt(s6.p50),
      fmt(s6.p99),
      '-',
      '-',
      '-',
    ]);
  } finally {
    await stopDaemon(d);
  }
  const tapwireP50 = summarize(one.setup).p50;
  const rs = summarize(one.refSetup);
  const rt = summarize(one.refTeardown);
  data.reference = { setup: rs, teardown: rt };
  rows.push(
    refSkip
      ? ['reference plumber (1 concurrent)', 'skipped', '-', '-', '-', '-']
      : ['reference plumber (1 concurrent)', fmt(rs.p50), fmt(rs.p99), fmt(rt.p50), fmt(rt.p99), fmt(1000 / rs.p50, 1)],
  );
  const f = summarize(one.floor);
  const fe = summarize(one.fence);
  const pf = summarize(one.pipelined);
  data.floor = f;
  data.pipelinedFloor = pf;
  data.fence = fe;
  rows.push(['bare netlink floor (same link ops)', fmt(f.p50), fmt(f.p99), '-', '-', fmt(1000 / f.p50, 1)]);
  rows.push(["pipelined floor (tapwire's requests, bare)", fmt(pf.p50), fmt(pf.p99), '-', '-', fmt(1000 / pf.p50, 1)]);
  rows.push(['fence alone (netlink batch, 1 txn)', fmt(fe.p50), fmt(fe.p99), '-', '-', fmt(1000 / fe.p50, 1)]);
  rows.push(['floor + fence', fmt(f.p50 + fe.p50), '-', '-', '-', fmt(1000 / (f.p50 + fe.p50), 1)]);
  const targets: Target[] = [
    ...(refSkip
      ? []
      : [atLeast('setup', 'setup p50: times faster than the reference plumber', rs.p50 / tapwireP50, 20)]),
    atMost('setup', 'setup p50: times the bare netlink floor', tapwireP50 / f.p50, 2),
  ];
  return {
    tables: [
      {
        title:
          `Sandbox network setup/teardown (ms; tapmanager daemon over its control socket; 1 concurrent: ${single} samples, ` +
          `interleaved with as many samples of each floor and the fence and ${one.refSetup.length} reference runs; ${rounds} per row above 1)`,
        columns: ['what', 'setup p50', 'setup p99', 'teardown p50', 'teardown p99', 'setups/s'],
        rows,
        notes: [
          ...(refSkip ? [`Reference plumber rows skipped: ${refSkip}.`] : []),
          'Reference plumber: bench/reference-plumber.sh, the same pod-side plumbing with iproute2 (links, addresses, a ' +
            'persistent tap), one nft script (the DHCP fence) and one dnsmasq per sandbox (static lease), started and ' +
            'waited for until it listens on :67; its CNI result is read with python3.',
          (refSkip
            ? 'tapwire (setup p50) '
            : `tapwire vs reference plumber (setup p50): ${ratio(rs.p50, tapwireP50)} faster; `) +
            `vs bare netlink floor: ${ratio(tapwireP50, f.p50)}; vs the pipelined floor: ${ratio(tapwireP50, pf.p50)}.`,
          "Bare netlink floor: one call per link change, awaited one after the other, links looked up by dump (the issue's " +
            '"tight loop of the bare netlink calls"). Pipelined floor: the same changes as tapwire sends them (two flights of ' +
            'pipelined requests, one request per link, indexes read in the namespace window), with nothing else: the distance ' +
            'from tapwire to it is the snapshot, the records, the fence, DHCP and the control socket.',
          `The fence (one nf_tables transaction, ${fmt(fe.p50)} ms alone) goes in on a pool thread while the links are built, so a setup pays ` +
            `only what of it outlasts the build; "floor + fence" is the same work done one after the other, and tapwire's ` +
            `1-concurrent setup p50 is ${ratio(tapwireP50, f.p50 + fe.p50)} that.`,
          'Dual-stack: the same pod with fd00:N::2/64 and a link-local IPv6 gateway; its setup adds the IPv6 plan, ' +
            'disable_ipv6 on the veth and tap, and a DHCPv6 server and router advertiser on the bridge.',
          'setups/s: sandboxes set up divided by the wall time of all their setups (for the reference and floor rows: 1000/p50).',
        ],
      },
    ],
    targets,
    data,
  };
}

/** Suite 2: daemon RSS, fds and next-setup latency at 1..1000 live sandboxes vs N x dnsmasq. */
export async function runScaleSuite(opts: { scale?: number[]; nodeFlags?: string[] } = {}): Promise<SuiteResult> {
  const scale = opts.scale ?? [1, 100, 500, 1000];
  const srows: (string | number)[][] = [];
  const data: Record<string, unknown>[] = [];
  const live: Pod[] = [];
  const ids: string[] = [];
  // with the metrics endpoint on, as the package's config has it
  const d = await startDaemon(opts.nodeFlags, ['--metrics-address', '127.0.0.1:0']);
  let lastRssMb = NaN;
  try {
    const base = rssKb(d.proc.pid!);
    let dnsmasqKb = NaN;
    try {
      for (const n of scale) {
        const more = await pods(n - live.length);
        for (const p of more) {
          const id = `s-${randomBytes(6).toString('hex')}`;
          await d.client.setup({ sandboxId: id, netnsPath: p.pod.path, cniResult: p.cniResult });
          ids.push(id);
          live.push(p);
        }
        const probe = (await pods(1))[0]!;
        const t0 = process.hrtime.bigint();
        const pid = `p-${randomBytes(6).toString('hex')}`;
        await d.client.setup({ sandboxId: pid, netnsPath: probe.pod.path, cniResult: probe.cniResult });
        const next = ms(t0);
        await d.client.teardown(pid);
        dropPods([probe]);
        const rss = rssKb(d.proc.pid!);
        lastRssMb = rss / 1024;
        if (Number.isNaN(dnsmasqKb)) dnsmasqKb = measureDnsmasqKb(live[0]!);
        const fds = fdCount(d.proc.pid!);
        // a Prometheus scrape (every sandbox's DHCP and fence counters read) vs the same
        // reads as N status requests on the control socket, one after another
        const scrapeMs = median(
          await timesMs(3, async () => {
            const r = await fetch(`http://${d.metrics}/metrics`);
            await r.text();
          }),
        );
        const statusMs = median(
          await timesMs(3, async () => {
            for (const id of ids) await d.client.status(id);
          }),
        );
        data.push({
          sandboxes: n,
          rssKb: rss,
          fds,
          nextSetupMs: next,
          kbPerSandbox: (rss - base) / n,
          dnsmasqKb,
          scrapeMs,
          statusMs,
        });
        srows.push([
          n,
          fmt(rss / 1024, 1),
          fds,
          fmt(next),
          fmt((rss - base) / Math.max(1, n), 1),
          fmt((dnsmasqKb * n) / 1024, 1),
          ratio(dnsmasqKb * n, rss),
          fmt(scrapeMs),
          ratio(statusMs, scrapeMs),
        ]);
      }
    } finally {
      for (const id of ids) await d.client.teardown(id).catch(() => undefined);
      dropPods(live);
    }
    const top = scale[scale.length - 1]!;
    return {
      tables: [
        {
          title: `Scale: live sandboxes in one tapmanager${opts.nodeFlags?.length ? ` (node ${opts.nodeFlags.join(' ')})` : ''}`,
          columns: [
            'sandboxes',
            'daemon RSS MB',
            'daemon fds',
            'next setup ms',
            'KB per sandbox',
            'N x dnsmasq RSS MB',
            'dnsmasq/tapwire',
            'scrape ms',
            'N status/scrape',
          ],
          rows: srows,
          notes: [
            `KB per sandbox = (RSS now - RSS of the idle daemon, ${fmt(base / 1024, 1)} MB) / N. ` +
              `One dnsmasq serving one static lease has ${fmt(dnsmasqKb / 1024, 2)} MB RSS (shared pages counted, as the reference would run it).`,
            'The daemon serves metrics (--metrics-address, as packaged). scrape ms: one GET /metrics (median of 3), ' +
              'which reads every sandbox; N status/scrape: the same reads as N sequential status requests, over the scrape.',
          ],
        },
      ],
      targets: top >= 1000 ? [atMost('scale', `daemon RSS at ${top} live sandboxes (MB)`, lastRssMb, 100, ' MB')] : [],
      data: { rows: data },
    };
  } finally {
    await stopDaemon(d);
  }
}

/** RSS of one dnsmasq serving one static lease (the reference's per-sandbox cost). */
function measureDnsmasqKb(p: Pod): number {
  const proc = track(
    spawn(
      'ip',
      [
        'netns',
        'exec',
        p.node.name,
        'dnsmasq',
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--port=0',
        '--no-resolv',
        '--no-hosts',
        '--interface=cni0',
        '--bind-interfaces',
        `--dhcp-range=${p.gw},static,255.255.255.0,1h`,
        `--dhcp-host=${p.mac},${p.ip}`,
        '--dhcp-leasefile=/dev/null',
      ],
      { stdio: 'ignore' },
    ),
  );
  const until = Date.now() + 2000;
  let kb = NaN;
  while (Date.now() < until) {
    try {
      if (fs.readFileSync(`/proc/${proc.pid}/comm`, 'utf8').trim() === 'dnsmasq') {
        execFileSync('sleep', ['0.2']);
        kb = rssKb(proc.pid!);
        break;
      }
    } catch {
      /* not yet */
    }
    execFileSync('sleep', ['0.02']);
  }
  proc.kill('SIGKILL');
  return kb;
}

/** A bench pod with `count` CNI interfaces (eth0, net1, ...), each on its own /24, all on one node. */
function multiPod(count: number): Pod[] {
  const first = benchPod();
  const out = [first];
  for (let k = 1; k < count; k++) {
    const net = 1 + (netCounter++ % 250);
    out.push(makePod({ net, node: first.node, pod: first.pod, ifname: `net${k}` }));
  }
  return out;
}

/**
 * One round of setup and teardown of each shape in turn, over the daemon's control
 * socket, each sandbox a fresh id (`prefix-` and random hex); the times (ms) go to
 * samples[k] of shape k.
 */
export async function timeSetupTeardown(
  d: Daemon,
  shapes: readonly { req: Omit<SetupRequest, 'op' | 'sandboxId'> }[],
  samples: { setup: number[]; teardown: number[] }[],
  prefix: string,
): Promise<void> {
  for (const [k, s] of shapes.entries()) {
    const id = `${prefix}-${randomBytes(6).toString('hex')}`;
    const t0 = process.hrtime.bigint();
    await d.client.setup({ sandboxId: id, ...s.req });
    samples[k]!.setup.push(ms(t0));
    const t1 = process.hrtime.bigint();
    await d.client.teardown(id);
    samples[k]!.teardown.push(ms(t1));
  }
}

/**
 * Suite 1b: setup/teardown p50 of one sandbox with 1 NIC (the request without `nics`,
 * and with `nics`) against 3 NICs (`nics`, three pod interfaces), interleaved round by
 * round on the same daemon; the 3 NICs are planned and built concurrently, so they
 * should cost well under 3x one.
 */
export async function runNicsSuite(opts: { rounds?: number } = {}): Promise<SuiteResult> {
  const rounds = opts.rounds ?? 40;
  const d = await startDaemon();
  const one = multiPod(1);
  const three = multiPod(3);
  const nicsOf = (ps: Pod[]) =>
    ps.map((p, k) => ({
      name: `net${k}`,
      binding: 'bridge',
      podInterface: k === 0 ? 'eth0' : `net${k}`,
      cniResult: p.cniResult,
    }));
  const shapes = [
    { what: '1 NIC (request without nics)', req: { netnsPath: one[0]!.pod.path, cniResult: one[0]!.cniResult } },
    { what: '1 NIC (nics)', req: { netnsPath: one[0]!.pod.path, nics: nicsOf(one) } },
    { what: '3 NICs (nics, 3 pod interfaces)', req: { netnsPath: three[0]!.pod.path, nics: nicsOf(three) } },
  ];
  const samples = shapes.map(() => ({ setup: [] as number[], teardown: [] as number[] }));
  try {
    for (let i = 0; i < rounds; i++) {
      await timeSetupTeardown(d, shapes, samples, 'n');
      await breathe();
    }
  } finally {
    await stopDaemon(d);
    dropPods([one[0]!, three[0]!]);
  }
  const sums = samples.map((x) => ({ setup: summarize(x.setup), teardown: summarize(x.teardown) }));
  const rows = shapes.map((s, k) => [
    s.what,
    fmt(sums[k]!.setup.p50),
    fmt(sums[k]!.setup.p99),
    fmt(sums[k]!.teardown.p50),
    fmt(sums[k]!.teardown.p99),
  ]);
  const per3 = sums[2]!.setup.p50 / sums[1]!.setup.p50;
  return {
    tables: [
      {
        title: `Setup/teardown of 1 vs 3 NICs (ms; tapmanager daemon over its control socket; ${rounds} interleaved rounds)`,
        columns: ['what', 'setup p50', 'setup p99', 'teardown p50', 'teardown p99'],
        rows,
        notes: [
          `3 NICs vs 1 NIC (both with nics, setup p50): ${ratio(sums[2]!.setup.p50, sums[1]!.setup.p50)}; ` +
            `1 NIC with nics vs without: ${ratio(sums[1]!.setup.p50, sums[0]!.setup.p50)}.`,
          'The NICs of one sandbox are snapshotted, planned and built concurrently (one netlink socket, pipelined), ' +
            'the fence goes in once for all of them, and each NIC with an IP gets its DHCP server.',
        ],
      },
    ],
    targets: [atMost('nics', 'setup p50: 3 NICs vs 1 NIC', per3, 2)],
    data: { rounds, ...Object.fromEntries(shapes.map((s, k) => [s.what, sums[k]])) },
  };
}
