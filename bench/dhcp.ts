// Bench suite 3: DHCP reply latency, tapwire's server against dnsmasq serving the same static
// lease, with the Node floor (a Node process answering with copies), all three running at once
// and taking turns, so that this shared machine's stalls (1-5 ms, every few hundred ms, for
// every process alike) fall on each server in the same measure rather than on whichever
// server's block they happened in. The namespaces are in dhcp-topology.ts, the servers in
// dhcp-servers.ts. The one-client rows (DISCOVER->OFFER, REQUEST->ACK selecting, unicast
// renewal; the first 100 rounds after a start; the paced burst) go through a probe process
// per server (dhcp-probe.ts), not through the bench process; the bench's own clients renew
// N leases one at a time round-robin and all N at once. Runnable alone:
// `node dist/bench/dhcp.js [N] [rounds] [warm-up rounds]`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { MessageType } from '../src/dhcp/constants';
import { DhcpTestClient } from '../test/fixtures/dhcp-client';
import type { BurstResult } from './dhcp-burst';
import type { ProbeRounds } from './dhcp-probe';
import { DhcpProbe } from './dhcp-probe-driver';
import { startDnsmasq, startNode, type Running, type ServerSite, type ServerTrace } from './dhcp-servers';
import { allNetns, buildTopology, SERVER_ID, SERVERS, type Sandbox, type Topology, type Which } from './dhcp-topology';
import { cpuNs, memKb, minorFaults, pin, pinApart, threadCpu, threadDelta } from './proc';
import { benchDir, cleanupAll, dropDir, dropNetns, installCleanup, waitQuiet } from './resources';
import { atMost, fmt, ratio, renderTable, summarize, SuiteResult, Table } from './table';

interface Attribution {
  slow: number;
  slowWithGc: number;
  gcPauses: number;
  gcMs: number;
  gcMax: number;
  loopP99: number;
  loopMax: number;
  elu: number;
}

/** The exchanges at or above their p99 (per kind), and how many overlap a GC pause of the server. */
function attributeWindows(kinds: [number, number][][], t: ServerTrace): Attribution {
  const windows: [number, number][] = [];
  for (const ws of kinds) {
    const p99 = summarize(ws.map(([from, to]) => to - from)).p99;
    for (const w of ws) if (w[1] - w[0] >= p99) windows.push(w);
  }
  const overlaps = (w: [number, number]): boolean => t.gc.some((g) => g.start < w[1] && g.start + g.ms > w[0]);
  return {
    slow: windows.length,
    slowWithGc: windows.filter(overlaps).length,
    gcPauses: t.gc.length,
    gcMs: t.gc.reduce((a, g) => a + g.ms, 0),
    gcMax: Math.max(0, ...t.gc.map((g) => g.ms)),
    loopP99: t.loopDelay.p99,
    loopMax: t.loopDelay.max,
    elu: t.elu,
  };
}

/** attributeWindows over the burst's DISCOVER->OFFER and REQUEST->ACK exchanges. */
function attribute(b: BurstResult, t: ServerTrace): Attribution {
  const tm = b.times;
  const kinds = [
    [tm.discover, tm.offer],
    [tm.request, tm.ack],
  ].map(([from, to]) =>
    Array.from(from!, (f, k): [number, number] => [f, to![k]!]).filter(([f, x]) => !Number.isNaN(x - f)),
  );
  return attributeWindows(kinds, t);
}

/**
 * With TWB_DHCP_COLD_TRACE: the burst's exchanges at or over their p99, as "+<ms into the burst>:<latency>",
 * after the burst's start in CLOCK_MONOTONIC ms (ftrace's mono clock: bench/sched-trace-report.py).
 */
function slowOnes(which: string, b: BurstResult): string {
  const tm = b.times;
  const t0 = tm.discover[0]!;
  const line = (kind: string, from: Float64Array, to: Float64Array): string => {
    const lat = Array.from(from, (f, k) => to[k]! - f);
    const p99 = summarize(lat.filter((x) => !Number.isNaN(x))).p99;
    const slow = lat.flatMap((x, k) => (x >= p99 ? [`+${(from[k]! - t0).toFixed(0)}:${x.toFixed(2)}`] : []));
    return `burst ${which} ${kind} at ${t0.toFixed(3)} >= p99 ${p99.toFixed(3)}: ${slow.join(' ')}\n`;
  };
  return line('offer', tm.discover, tm.offer) + line('ack', tm.request, tm.ack);
}

interface Samples {
  offer: number[];
  ack: number[];
  renew: number[];
  lost: number;
}

function newSamples(): Samples {
  return { offer: [], ack: [], renew: [], lost: 0 };
}

/** Each exchange's [sent, answered] in CLOCK_MONOTONIC ms (hrtime), per kind: for attributeWindows. */
type Windows = Record<'offer' | 'ack' | 'renew', [number, number][]>;

/** The probe's rounds into out (latencies) and w (their windows). */
function addRounds(r: ProbeRounds, out: Samples, w?: Windows): void {
  for (const kind of ['offer', 'ack', 'renew'] as const) {
    const { sent, at } = r[kind];
    for (let j = 0; j < sent.length; j++) {
      out[kind].push(at[j]! - sent[j]!);
      w?.[kind].push([sent[j]!, at[j]!]);
    }
  }
  out.lost += r.lost;
}

/** A unicast renewal through one of the bench's own clients (the many-sandbox rows). */
async function renew(c: DhcpTestClient, s: Sandbox, out: Samples): Promise<void> {
  const r = await c.exchange(c.build(MessageType.REQUEST, { broadcast: false, ciaddr: s.lease.ip }), SERVER_ID);
  if (r?.packet.messageType === MessageType.ACK) out.renew.push(ms(r.sentAt, r.at));
  else out.lost++;
}

export interface DhcpOptions {
  /**
   * warm single-client rounds per server (default 2000, in turns of 100): a p99 of 2000 is
   * their 20th-worst; of session 7's 600 it was the 6th, which a few of the machine's spikes
   * decided (the warm OFFER p99 ratio swung 0.35-1.72x between quiet runs)
   */
  rounds?: number;
  /** sandboxes of each server's many-sandbox rows (default 1000) */
  many?: number;
  /** round-robin passes and bursts over the many sandboxes (default 3) */
  passes?: number;
  /** node flags for tapwire's server process, e.g. --cpu-prof */
  nodeFlags?: string[];
  /** single-client rounds per server between the cold and the warm samples (default 1000) */
  warmup?: number;
  /** run the probes and the servers on this one CPU (default: the last; -1 = no pinning) */
  cpu?: number;
  /** starts of all three servers whose first rounds make the cold rows (default 3) */
  coldStarts?: number;
  /** paced burst: exchanges per second (default 500) */
  burstRate?: number;
  /** paced burst: exchanges per server, in turns of 250 (default 2500) */
  burstCount?: number;
  /**
   * keep dnsmasq's many-sandbox processes live through the one-client rows too (default: only
   * for the many-sandbox rows; with 1000 more processes this machine's agent stalls a CPU
   * 10-25 ms once a second, for every server alike)
   */
  dnsmasqManyThroughout?: boolean;
}

/** Server w's probe process, on its sandbox's peer. */
function startProbe(topo: Topology, w: Which): DhcpProbe {
  const p = topo.probes[w];
  return DhcpProbe.start({
    netns: p.client.path,
    ifname: p.sandbox.ifname,
    mac: p.sandbox.lease.mac,
    ip: p.sandbox.lease.ip,
    serverId: SERVER_ID,
  });
}

const ms = (a: bigint, b: bigint): number => Number(b - a) / 1e6;

/** a's entries starting at k (mod its length): the order of turn k */
const rotate = <T>(a: readonly T[], k: number): T[] => [...a.slice(k % a.length), ...a.slice(0, k % a.length)];

const perServer = <T>(f: (w: Which) => T): Record<Which, T> => ({
  tapwire: f('tapwire'),
  dnsmasq: f('dnsmasq'),
  echo: f('echo'),
});

export async function runDhcpSuite(opts: DhcpOptions = {}): Promise<SuiteResult> {
  const rounds = opts.rounds ?? 2000;
  const coldTrace = process.env.TWB_DHCP_COLD_TRACE !== undefined;
  const many = opts.many ?? 1000;
  const passes = opts.passes ?? 3;
  const warmup = opts.warmup ?? 1000;
  const coldRounds = 100;
  const coldStarts = Math.max(1, opts.coldStarts ?? 3);
  const burstRate = opts.burstRate ?? 500;
  const burstCount = opts.burstCount ?? 2500;
  const turn = Math.min(100, rounds);
  const burstTurn = Math.min(250, burstCount);
  const cpu = opts.cpu ?? os.cpus().length - 1;
  const pinTo = (pid: number): void => {
    if (cpu >= 0) pin(pid, String(cpu));
  };
  // an earlier run's (or suite's) namespaces may still be being torn down by the kernel
  const quiet = await waitQuiet();
  process.stderr.write(
    `dhcp: waited ${(quiet.waitedMs / 1000).toFixed(1)} s for a quiet machine (load ${quiet.load1})\n`,
  );
  const dir = benchDir('dhcp', '/run');
  const topo = await buildTopology(many);
  // The probes and every server run on the one CPU; the bench process (2000 client sockets,
  // every sample) on the others, except while it is the client itself (the many-sandbox rows).
  const others =
    cpu >= 0
      ? os
          .cpus()
          .map((_, i) => i)
          .filter((i) => i !== cpu)
          .join(',') || String(cpu)
      : '';
  const unpinned = cpu >= 0 ? pin(process.pid, others) : '';
  const benchOn = (cpus: string): void => {
    if (cpu >= 0) pin(process.pid, cpus);
  };
  const probes = perServer((w) => startProbe(topo, w));
  const clients = perServer((): DhcpTestClient[] => []);
  const running: Partial<Record<Which, Running>> = {};
  /** dnsmasq's many-sandbox processes while they run apart from its probe's */
  let dnsmasqMany: Running | undefined;
  const one = perServer(newSamples);
  const cold = perServer(newSamples);
  const paced = perServer(newSamples);
  const rr = { tapwire: newSamples(), dnsmasq: newSamples() };
  const burst = { tapwire: newSamples(), dnsmasq: newSamples() };
  /** each server's answering thread's CPU (ns) over its cold and its warm exchanges, and their count */
  const cpuUse = perServer(() => ({ cold: 0, coldN: 0, warm: 0, warmN: 0 }));
  const attributions: Attribution[] = [];
  const warmAttributions: Attribution[] = [];
  const mem: Record<string, { rss: number; pss: number; base?: number }> = {};
  const stopAll = async (): Promise<void> => {
    await Promise.all([...SERVERS.map((w) => running[w]?.stop()), dnsmasqMany?.stop()]);
    for (const w of SERVERS) delete running[w];
    dnsmasqMany = undefined;
  };
  try {
    for (const w of SERVERS) pinTo(probes[w].pid);
    for (const w of ['tapwire', 'dnsmasq'] as const)
      for (const s of topo.sets[w].sandboxes)
        clients[w].push(await DhcpTestClient.open(topo.sets[w].client!.path, s.ifname, s.lease.mac));
    const apart = !opts.dnsmasqManyThroughout;
    const site = (w: Which): ServerSite => {
      const all = w !== 'dnsmasq' || !apart;
      return {
        sandboxes: all ? topo.sets[w].sandboxes : [],
        clients: all ? clients[w] : [],
        probeSandbox: topo.probes[w].sandbox,
        probe: probes[w],
        // pinned from their spawn, except dnsmasq's 1000 other processes: they start on every
        // CPU (1000 starts on one outlasted the INFORM wait) and are pinned after (pinTo)
        ...(cpu >= 0 && !(w === 'dnsmasq' && all) ? { cpu: String(cpu) } : {}),
      };
    };
    const startAll = async (order: Which[]): Promise<void> => {
      for (const w of order) {
        running[w] =
          w === 'dnsmasq'
            ? await startDnsmasq(site(w), dir)
            : await startNode(site(w), dir, {
                echo: w === 'echo',
                nodeFlags: w === 'tapwire' ? (opts.nodeFlags ?? []) : [],
              });
        running[w].pids.forEach(pinTo);
      }
    };
    const pid = (w: Which): number => running[w]!.pids[0]!;
    /** turn after turn, each server's probe does `run`; one unmeasured round before each turn */
    const turns = async (n: number, run: (w: Which, t: number) => Promise<void>): Promise<void> => {
      for (let t = 0; t < n; t++) {
        for (const w of rotate(SERVERS, t)) {
          await probes[w].collect(); // the probe's garbage, before its turn
          await probes[w].rounds(1); // the first exchange after the others' turns (and the GC)
          await run(w, t);
        }
      }
    };
    // A first start of all three, unmeasured, warms the probes' own code against real replies
    // (session 8: with the client in the bench process, V8 compiled it during the first measured
    // block, always tapwire's, on the CPU the servers share).
    await startAll([...SERVERS]);
    // a probe stands for a guest on a CPU of its own: its helper threads (V8's compiler), now
    // started, off the servers' CPU
    if (cpu >= 0) for (const w of SERVERS) pinApart(probes[w].pid, String(cpu), others);
    for (const w of SERVERS) {
      await probes[w].rounds(warmup);
      await probes[w].burst(burstRate, 250);
    }
    for (let k = 0; k < coldStarts; k++) {
      const order = rotate(SERVERS, k);
      for (const w of SERVERS) await probes[w].collect();
      await stopAll();
      await startAll(order);
      for (const w of order) {
        // the first coldRounds rounds after the start: V8 still compiling the hot path
        const cpu0 = cpuNs(pid(w));
        const th0 = coldTrace ? threadCpu(pid(w)) : new Map<string, number>();
        const me0 = coldTrace ? threadCpu(probes[w].pid) : new Map<string, number>();
        const fs0 = coldTrace ? minorFaults(pid(w)) : 0;
        const coldFrom = cold[w].ack.length;
        addRounds(await probes[w].rounds(coldRounds), cold[w]);
        cpuUse[w].cold += cpuNs(pid(w)) - cpu0;
        cpuUse[w].coldN += coldRounds * 3;
        if (coldTrace) {
          const seq = (a: number[]): string =>
            a
              .slice(coldFrom)
              .map((x) => x.toFixed(2))
              .join(' ');
          process.stderr.write(
            `cold ${w} threads: ${threadDelta(th0, threadCpu(pid(w)))}; probe: ${threadDelta(me0, threadCpu(probes[w].pid))}; ` +
              `minor faults server ${minorFaults(pid(w)) - fs0}\ncold ${w} offer: ${seq(cold[w].offer)}\ncold ${w} ack: ${seq(cold[w].ack)}\n`,
          );
        }
      }
      if (k > 0) continue;
      // the warm rows, the paced burst and the many-sandbox rows, after the first measured start's cold rows
      for (const w of order) await probes[w].rounds(warmup); // caches, JIT tiers
      await turns(Math.ceil(rounds / turn), async (w) => {
        const windows: Windows | undefined = running[w]!.trace ? { offer: [], ack: [], renew: [] } : undefined;
        await running[w]!.trace?.(); // the trace starts with the turn
        const cpu0 = cpuNs(pid(w));
        addRounds(await probes[w].rounds(turn), one[w], windows);
        cpuUse[w].warm += cpuNs(pid(w)) - cpu0;
        cpuUse[w].warmN += turn * 3;
        const tr = await running[w]!.trace?.();
        if (tr && windows && w === 'tapwire')
          warmAttributions.push(attributeWindows([windows.offer, windows.ack, windows.renew], tr));
      });
      await turns(Math.ceil(burstCount / burstTurn), async (w) => {
        await running[w]!.trace?.(); // the trace starts with the burst
        const b = await probes[w].burst(burstRate, burstTurn);
        paced[w].offer.push(...b.offer);
        paced[w].ack.push(...b.ack);
        paced[w].lost += b.lost;
        if (coldTrace) process.stderr.write(slowOnes(w, b));
        const tr = await running[w]!.trace?.();
        if (tr && w === 'tapwire') attributions.push(attribute(b, tr));
      });
      if (apart) {
        dnsmasqMany = await startDnsmasq({ sandboxes: topo.sets.dnsmasq.sandboxes, clients: clients.dnsmasq }, dir);
        dnsmasqMany.pids.forEach(pinTo);
      }
      benchOn(String(cpu)); // the bench is the client of these rows
      try {
        for (let p = 0; p < passes; p++) {
          for (const w of rotate(['tapwire', 'dnsmasq'] as const, p)) {
            const set = topo.sets[w].sandboxes;
            for (let i = 0; i < many; i++) await renew(clients[w][i]!, set[i]!, rr[w]);
            await Promise.all(clients[w].map((c, i) => renew(c, set[i]!, burst[w])));
          }
        }
      } finally {
        benchOn(others);
      }
      for (const w of ['tapwire', 'dnsmasq'] as const) {
        const r = running[w]!;
        const pids = [...r.pids, ...(w === 'dnsmasq' && dnsmasqMany ? dnsmasqMany.pids : [])];
        const m = pids.map(memKb).reduce((a, b) => ({ rss: a.rss + b.rss, pss: a.pss + b.pss }));
        mem[w] = { ...m, ...(r.baseKb !== undefined ? { base: r.baseKb } : {}) };
      }
    }
    for (const w of SERVERS) {
      const u = cpuUse[w];
      // the answering thread's CPU time per exchange (schedstat: barely moved by the machine's load)
      process.stderr.write(
        `dhcp server cpu (${w}): first ${coldRounds} rounds ${(u.cold / 1e3 / u.coldN).toFixed(1)} us/exchange, warm ${(u.warm / 1e3 / u.warmN).toFixed(1)}\n`,
      );
    }
    if (attributions.length) process.stderr.write(`dhcp burst trace (tapwire): ${JSON.stringify(attributions)}\n`);
    if (warmAttributions.length)
      process.stderr.write(`dhcp warm trace (tapwire): ${JSON.stringify(warmAttributions)}\n`);
  } finally {
    await stopAll();
    if (unpinned) pin(process.pid, unpinned);
    await Promise.all(SERVERS.map((w) => probes[w].close()));
    await Promise.all(SERVERS.flatMap((w) => clients[w].map((c) => c.close())));
    dropNetns(...allNetns(topo));
    dropDir(dir);
  }
  const row = (label: string, t: number[], d: number[]): (string | number)[] => {
    const a = summarize(t);
    const b = summarize(d);
    return [
      label,
      fmt(a.p50, 3),
      fmt(a.p99, 3),
      fmt(b.p50, 3),
      fmt(b.p99, 3),
      ratio(a.p50, b.p50),
      ratio(a.p99, b.p99),
    ];
  };
  const T = one.tapwire;
  const D = one.dnsmasq;
  const table: Table = {
    title: `DHCP reply latency (ms), tapwire vs dnsmasq, same static lease (${rounds} warm single-client rounds per server in turns of ${turn}; ${many} sandboxes x ${passes * 2} passes)`,
    columns: ['exchange', 'tapwire p50', 'tapwire p99', 'dnsmasq p50', 'dnsmasq p99', 'p50 t/d', 'p99 t/d'],
    rows: [
      row('1 client, warm: DISCOVER -> OFFER', T.offer, D.offer),
      row('1 client, warm: REQUEST (selecting) -> ACK', T.ack, D.ack),
      row('1 client, warm: REQUEST (renewing, unicast) -> ACK', T.renew, D.renew),
      row(
        `1 client, first ${coldRounds} rounds after start: DISCOVER -> OFFER`,
        cold.tapwire.offer,
        cold.dnsmasq.offer,
      ),
      row(`1 client, first ${coldRounds} rounds after start: REQUEST -> ACK`, cold.tapwire.ack, cold.dnsmasq.ack),
      row('Node floor (1 client, canned reply, no DHCP work) vs dnsmasq: OFFER', one.echo.offer, D.offer),
      row('Node floor vs dnsmasq: ACK', one.echo.ack, D.ack),
      row(`Node floor, first ${coldRounds} rounds after start, vs dnsmasq: ACK`, cold.echo.ack, cold.dnsmasq.ack),
      row(`${many} live: renewals one at a time, round-robin`, rr.tapwire.renew, rr.dnsmasq.renew),
      row(`${many} live: all ${many} renew at once (burst)`, burst.tapwire.renew, burst.dnsmasq.renew),
    ],
    notes: [
      `All three servers run at once, each on sandboxes of its own (${many} + 1 for tapwire and for dnsmasq, 1 for the Node floor), and take turns: ` +
        `${turn} rounds (warm rows) or ${burstTurn} paced exchanges (burst) each, in rotating order, every turn after one unmeasured round; so the machine's stalls fall on each alike.`,
      opts.dnsmasqManyThroughout
        ? `dnsmasq's ${many} other processes ran through every row.`
        : `tapwire's one process serves its ${many} + 1 sandboxes in every row; dnsmasq's ${many} other processes (one per sandbox) are started only for the ${many}-live rows: ` +
          `with ${many} more processes this machine's agent takes a CPU for 10-25 ms once a second (docs/dhcp-latency.md, session 14), which decided the one-client p99s of every server alike.`,
      `warm = after ${warmup} rounds of each; "first ${coldRounds} rounds after start" = the first rounds after all three were started ` +
        `(in rotating order) and every sandbox's server answered one INFORM (the same readiness for every server), over ${coldStarts} starts; ` +
        'a first start of all three, unmeasured, warms the probes.',
      `Started after ${fmt(quiet.waitedMs / 1000, 1)} s of waiting for a quiet machine (no kernel netns cleanup for 3 s, 1-minute load ${quiet.load1} < 1).`,
      'Latency = client send to the reply arriving at the client socket. The one-client rows and the paced burst go through the probe ' +
        '(bench/dhcp-probe.ts: one per server, a process of its own with one socket, alone on port 68 in its netns, on a sandbox of its own, ' +
        'its garbage collected between turns and its helper threads off the measured CPU); ' +
        `the ${many}-live rows through the bench process's ${many} client sockets per server. t/d < 1 means tapwire is faster.`,
      `Lost (no reply in 2 s): tapwire ${T.lost + rr.tapwire.lost + burst.tapwire.lost}, dnsmasq ${D.lost + rr.dnsmasq.lost + burst.dnsmasq.lost}.`,
      cpu >= 0
        ? `The probes and every server process pinned to CPU ${cpu} (taskset), so that the scheduler's choice of core does not decide the ratio; ` +
          `the bench process runs on the other CPUs except during the ${many}-live rows, where it is the client (then on CPU ${cpu} too).`
        : 'No CPU pinning.',
      'Node floor: a dgram socket bound the same way that answers each request with a copy of itself (no decode, state or options).',
      `A p99 of ${coldRounds * coldStarts} cold exchanges is exceeded by ${coldRounds * coldStarts - Math.ceil(coldRounds * coldStarts * 0.99)} of them: single spikes of 0.5-2 ms that this shared 2-vCPU machine gives ` +
        'every server alike (the Node floor and dnsmasq too; TWB_DHCP_COLD_TRACE=1 prints each exchange in order).',
      'dnsmasq runs as the reference plumber runs it (one process per sandbox, lease file in /run) but without --log-dhcp; tapwire logs nothing either.',
      ...(warmAttributions.length
        ? [
            `Trace (TWB_DHCP_TRACE=1): tapwire's warm exchanges at or over their p99 (OFFER, ACK, renewal each): ${warmAttributions.reduce((n, a) => n + a.slow, 0)}, ` +
              `of which overlapping a GC pause of the server: ${warmAttributions.reduce((n, a) => n + a.slowWithGc, 0)}; ` +
              `GC pauses during the warm rounds: ${warmAttributions.reduce((n, a) => n + a.gcPauses, 0)} (longest ${fmt(Math.max(...warmAttributions.map((a) => a.gcMax)), 2)} ms).`,
          ]
        : []),
    ],
  };
  const burstRow = (label: string, x: Samples): (string | number)[] => {
    const o = summarize(x.offer);
    const a = summarize(x.ack);
    return [label, fmt(o.p50, 3), fmt(o.p99, 3), fmt(a.p50, 3), fmt(a.p99, 3), fmt(Math.max(o.max, a.max), 3), x.lost];
  };
  // every burst and warm sample, for a look at the whole tail (e.g. p90-p99.9 of each server)
  if (process.env.TWB_DHCP_SAMPLES) fs.writeFileSync(process.env.TWB_DHCP_SAMPLES, JSON.stringify({ paced, one }));
  const PT = summarize(paced.tapwire.offer);
  const PD = summarize(paced.dnsmasq.offer);
  const AT = summarize(paced.tapwire.ack);
  const AD = summarize(paced.dnsmasq.ack);
  const maxOf = (x: Samples): number => Math.max(summarize(x.offer).max, summarize(x.ack).max);
  const sum = (f: (a: Attribution) => number): number => attributions.reduce((n, a) => n + f(a), 0);
  const burstTable: Table = {
    title: `DHCP paced burst (ms): ${burstRate} exchanges/s x ${burstCount} per server, DISCOVER -> OFFER then REQUEST -> ACK, one client, tapwire serving ${many + 1} sandboxes${opts.dnsmasqManyThroughout ? ` and ${many + 1} dnsmasq live` : ''}`,
    columns: ['server', 'OFFER p50', 'OFFER p99', 'ACK p50', 'ACK p99', 'max', 'lost'],
    rows: [
      burstRow('tapwire', paced.tapwire),
      burstRow('dnsmasq', paced.dnsmasq),
      burstRow('Node floor (canned reply)', paced.echo),
      [
        'tapwire / dnsmasq',
        ratio(PT.p50, PD.p50),
        ratio(PT.p99, PD.p99),
        ratio(AT.p50, AD.p50),
        ratio(AT.p99, AD.p99),
        ratio(maxOf(paced.tapwire), maxOf(paced.dnsmasq)),
        '-',
      ],
    ],
    notes: [
      `Paced like perfdhcp's template mode: one DISCOVER every ${fmt(1000 / burstRate, 1)} ms whether or not earlier ones were answered, the REQUEST (selecting, broadcast) sent as its OFFER arrives; ` +
        'the same static lease and MAC for all, told apart by xid. The client is the probe (its socket behind a veth into the sandbox bridge, the path the other rows take); ' +
        `requests are encoded once and replies read in place so that the client allocates next to nothing. Each server gets the burst in turns of ${burstTurn} exchanges.`,
      'lost = no OFFER or no ACK within 1 s.',
      ...(attributions.length
        ? [
            `Trace (TWB_DHCP_TRACE=1; the tracing itself perturbs the run): tapwire's exchanges at or over the burst's p99: ${sum((a) => a.slow)}, ` +
              `of which overlapping a GC pause of the server: ${sum((a) => a.slowWithGc)}; GC pauses during the bursts: ${sum((a) => a.gcPauses)} ` +
              `(${fmt(
                sum((a) => a.gcMs),
                1,
              )} ms in all, longest ${fmt(Math.max(...attributions.map((a) => a.gcMax)), 2)} ms); ` +
              `event-loop delay p99 ${attributions.map((a) => fmt(a.loopP99, 2)).join('/')} ms, max ${attributions.map((a) => fmt(a.loopMax, 2)).join('/')} ms; ` +
              `loop utilisation ${attributions.map((a) => fmt(a.elu * 100, 1)).join('/')} %.`,
          ]
        : []),
    ],
  };
  const tw = mem.tapwire;
  const dm = mem.dnsmasq;
  const memTable: Table = {
    title: `DHCP server memory at ${many + 1} sandboxes (${many} and the probe's)`,
    columns: ['server', 'processes', 'RSS MB', 'PSS MB', 'KB per sandbox (RSS)', 'KB per sandbox (PSS)'],
    rows: [
      [
        'tapwire (one process, all servers)',
        1,
        fmt((tw?.rss ?? NaN) / 1024, 1),
        fmt((tw?.pss ?? NaN) / 1024, 1),
        fmt(((tw?.rss ?? NaN) - (tw?.base ?? NaN)) / (many + 1), 1),
        '-',
      ],
      [
        'dnsmasq (one per sandbox)',
        many + 1,
        fmt((dm?.rss ?? NaN) / 1024, 1),
        fmt((dm?.pss ?? NaN) / 1024, 1),
        fmt((dm?.rss ?? NaN) / (many + 1), 1),
        fmt((dm?.pss ?? NaN) / (many + 1), 1),
      ],
    ],
    notes: [
      `tapwire KB per sandbox = (RSS - RSS of the process before any server, ${fmt((tw?.base ?? NaN) / 1024, 1)} MB) / ${many + 1}.`,
    ],
  };
  const worst = (t: number[], d: number[], p: 'p50' | 'p99'): number => summarize(t)[p] / summarize(d)[p];
  return {
    tables: [table, burstTable, memTable],
    targets: [
      atMost('dhcp', '1 client DISCOVER->OFFER p50, tapwire/dnsmasq', worst(T.offer, D.offer, 'p50'), 1),
      atMost('dhcp', '1 client REQUEST->ACK p50, tapwire/dnsmasq', worst(T.ack, D.ack, 'p50'), 1),
      atMost('dhcp', '1 client DISCOVER->OFFER p99, tapwire/dnsmasq', worst(T.offer, D.offer, 'p99'), 1),
      atMost('dhcp', '1 client REQUEST->ACK p99, tapwire/dnsmasq', worst(T.ack, D.ack, 'p99'), 1),
      atMost(
        'dhcp',
        `1 client, first ${coldRounds} after start, DISCOVER->OFFER p99, tapwire/dnsmasq`,
        worst(cold.tapwire.offer, cold.dnsmasq.offer, 'p99'),
        1.5,
      ),
      atMost(
        'dhcp',
        `1 client, first ${coldRounds} after start, REQUEST->ACK p99, tapwire/dnsmasq`,
        worst(cold.tapwire.ack, cold.dnsmasq.ack, 'p99'),
        1.5,
      ),
      atMost('dhcp', `paced burst ${burstRate}/s DISCOVER->OFFER p50, tapwire/dnsmasq`, PT.p50 / PD.p50, 1),
      atMost('dhcp', `paced burst ${burstRate}/s REQUEST->ACK p50, tapwire/dnsmasq`, AT.p50 / AD.p50, 1),
      atMost('dhcp', `paced burst ${burstRate}/s DISCOVER->OFFER p99, tapwire/dnsmasq`, PT.p99 / PD.p99, 1),
      atMost('dhcp', `paced burst ${burstRate}/s REQUEST->ACK p99, tapwire/dnsmasq`, AT.p99 / AD.p99, 1),
      atMost(
        'dhcp',
        `${many} live renewals (round-robin) p50, tapwire/dnsmasq`,
        worst(rr.tapwire.renew, rr.dnsmasq.renew, 'p50'),
        1,
      ),
      atMost(
        'dhcp',
        `${many} live renewals (round-robin) p99, tapwire/dnsmasq`,
        worst(rr.tapwire.renew, rr.dnsmasq.renew, 'p99'),
        1,
      ),
      atMost(
        'dhcp',
        `${many} renewals at once p50, tapwire/dnsmasq`,
        worst(burst.tapwire.renew, burst.dnsmasq.renew, 'p50'),
        1,
      ),
      atMost(
        'dhcp',
        `${many} renewals at once p99, tapwire/dnsmasq`,
        worst(burst.tapwire.renew, burst.dnsmasq.renew, 'p99'),
        1,
      ),
    ],
    data: {
      one: { tapwire: stat(T), dnsmasq: stat(D), nodeFloor: stat(one.echo) },
      coldOne: { tapwire: stat(cold.tapwire), dnsmasq: stat(cold.dnsmasq) },
      roundRobin: { tapwire: stat(rr.tapwire), dnsmasq: stat(rr.dnsmasq) },
      burst: { tapwire: stat(burst.tapwire), dnsmasq: stat(burst.dnsmasq) },
      paced: {
        rate: burstRate,
        count: burstCount,
        tapwire: stat(paced.tapwire),
        dnsmasq: stat(paced.dnsmasq),
        nodeFloor: stat(paced.echo),
        trace: attributions,
      },
      warmTrace: warmAttributions,
      memoryKb: mem,
    },
  };
}

function stat(s: Samples): Record<string, unknown> {
  return { offer: summarize(s.offer), ack: summarize(s.ack), renew: summarize(s.renew), lost: s.lost };
}

if (require.main === module) {
  installCleanup();
  const many = Number(process.argv[2] ?? 100);
  const nodeFlags = (process.env.TWB_DHCP_NODE_FLAGS ?? '').split(' ').filter(Boolean); // e.g. --cpu-prof
  runDhcpSuite({
    many,
    rounds: Number(process.argv[3] ?? 2000),
    nodeFlags,
    warmup: Number(process.argv[4] ?? 1000),
    ...(process.env.TWB_DHCP_BURST ? { burstCount: Number(process.env.TWB_DHCP_BURST) } : {}),
    dnsmasqManyThroughout: process.env.TWB_DHCP_DNSMASQ_MANY_THROUGHOUT !== undefined,
  })
    .then((r) => {
      for (const t of r.tables) console.log(`${renderTable(t)}\n`);
      for (const t of r.targets)
        console.log(`${t.met ? 'MET   ' : 'MISSED'} ${t.what}: ${t.measured} (goal ${t.goal}, ${t.by})`);
    })
    .catch((e: unknown) => {
      console.error(e instanceof Error ? e.stack : e);
      cleanupAll();
      process.exit(1);
    });
}
