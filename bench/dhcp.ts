// Bench suite 3: DHCP reply latency, tapwire's server against dnsmasq serving the same static
// lease, in the same run (sandboxes and servers: dhcp-servers.ts). Measured:
// DISCOVER->OFFER and REQUEST->ACK (selecting, broadcast) for one client, warm and in the
// first rounds after a start; a paced burst (dhcp-burst.ts); and a unicast renewal
// REQUEST->ACK with N sandboxes live: one at a time round-robin, and all N at once. tapwire,
// dnsmasq and the Node floor run at the same time, each on its own sandboxes, and take turns
// of 100 rounds (250 paced exchanges). Runnable alone: `node dist/bench/dhcp.js [N]`.
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { MessageType } from '../src/dhcp/constants';
import { collectGarbageAndSettle } from '../src/util/collect-garbage';
import { DhcpTestClient } from '../test/fixtures/dhcp-client';
import { pacedBurst, type BurstResult } from './dhcp-burst';
import {
  buildTopology,
  SERVER_ID,
  startDnsmasq,
  startTapwire,
  type Running,
  type Sandbox,
  type ServerTrace,
  type Topology,
} from './dhcp-servers';
import { cpuNs, memKb, minorFaults, threadCpu, threadDelta } from './proc-readings';
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

const ms = (a: bigint, b: bigint): number => Number(b - a) / 1e6;

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

const windowOf = (r: { sentAt: bigint; at: bigint }): [number, number] => [Number(r.sentAt) / 1e6, Number(r.at) / 1e6];

async function renew(c: DhcpTestClient, s: Sandbox, out: Samples, w?: Windows): Promise<void> {
  const r = await c.exchange(c.build(MessageType.REQUEST, { broadcast: false, ciaddr: s.lease.ip }), SERVER_ID);
  if (r?.packet.messageType === MessageType.ACK) {
    out.renew.push(ms(r.sentAt, r.at));
    w?.renew.push(windowOf(r));
  } else out.lost++;
}

/** One client: DISCOVER->OFFER, REQUEST (selecting)->ACK, unicast renewal->ACK, `rounds` times. */
async function oneClient(c: DhcpTestClient, s: Sandbox, rounds: number, out: Samples, w?: Windows): Promise<void> {
  for (let k = 0; k < rounds; k++) {
    const o = await c.exchange(c.discover());
    if (o?.packet.messageType !== MessageType.OFFER) {
      out.lost++;
      continue;
    }
    out.offer.push(ms(o.sentAt, o.at));
    w?.offer.push(windowOf(o));
    const a = await c.exchange(c.request(s.lease.ip, SERVER_ID));
    if (a?.packet.messageType === MessageType.ACK) {
      out.ack.push(ms(a.sentAt, a.at));
      w?.ack.push(windowOf(a));
    } else out.lost++;
    await renew(c, s, out, w);
  }
}

export interface DhcpOptions {
  /**
   * single-client rounds per block (default 1000; two blocks per server): a p99 of 2000 is
   * their 20th-worst; of session 7's 600 it was the 6th, which a few of the machine's spikes
   * decided (the warm OFFER p99 ratio swung 0.35-1.72x between quiet runs)
   */
  rounds?: number;
  /** sandboxes for the many-sandbox rows (default 1000) */
  many?: number;
  /** round-robin passes and bursts over the many sandboxes (default 3) */
  passes?: number;
  /** node flags for tapwire's server process, e.g. --cpu-prof */
  nodeFlags?: string[];
  /** single-client rounds between the cold and the warm samples, per block (default 1000) */
  warmup?: number;
  /** run client and servers on this one CPU (default: the last; -1 = no pinning) */
  cpu?: number;
  /** server starts whose first rounds make the cold rows (default 3; at least the 2 full blocks) */
  coldStarts?: number;
  /** paced burst: exchanges per second (default 500) */
  burstRate?: number;
  /** paced burst: exchanges per server, split over its two blocks (default 2500) */
  burstCount?: number;
}

/** Pins every thread of pid to cpu (taskset -a -p); returns the previous CPU list. */
function pin(pid: number, cpus: string): string {
  const before = /: (\S+)$/.exec(execFileSync('taskset', ['-pc', String(pid)], { encoding: 'utf8' }).trim())?.[1] ?? '';
  execFileSync('taskset', ['-a', '-pc', cpus, String(pid)], { stdio: 'ignore' });
  return before;
}

type Which = 'tapwire' | 'dnsmasq' | 'echo';
const SERVERS: readonly Which[] = ['tapwire', 'dnsmasq', 'echo'];

/** The servers in turn k's order: each leads every third turn. */
const turn = (k: number): Which[] => [0, 1, 2].map((j) => SERVERS[(k + j) % 3]!);

export async function runDhcpSuite(opts: DhcpOptions = {}): Promise<SuiteResult> {
  const rounds = opts.rounds ?? 1000;
  const coldTrace = process.env.TWB_DHCP_COLD_TRACE !== undefined;
  const many = opts.many ?? 1000;
  const passes = opts.passes ?? 3;
  const warmup = opts.warmup ?? 1000;
  const coldRounds = 100;
  const coldStarts = Math.max(2, opts.coldStarts ?? 3);
  const burstRate = opts.burstRate ?? 500;
  const burstCount = opts.burstCount ?? 2500;
  /** single-client rounds per server per turn, and paced exchanges per server per turn */
  const turnRounds = 100;
  const burstChunk = 250;
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
  // every server has sandboxes of its own, so that all three run at once and take turns, and
  // a client netns of its own: a broadcast reply is matched against every socket bound to
  // port 68 in the netns (the kernel walks them all), so 2001 client sockets in one netns
  // doubled every server's CPU per exchange (52 -> 119 us for tapwire, 86 -> 134 for dnsmasq)
  const topos: Record<Which, Topology> = {
    tapwire: await buildTopology(many),
    dnsmasq: await buildTopology(many),
    echo: await buildTopology(1),
  };
  const unpinned = cpu >= 0 ? pin(process.pid, String(cpu)) : '';
  const clients: Record<Which, DhcpTestClient[]> = { tapwire: [], dnsmasq: [], echo: [] };
  const one = { tapwire: newSamples(), dnsmasq: newSamples(), echo: newSamples() };
  const cold = { tapwire: newSamples(), dnsmasq: newSamples(), echo: newSamples() };
  const rr = { tapwire: newSamples(), dnsmasq: newSamples() };
  const burst = { tapwire: newSamples(), dnsmasq: newSamples() };
  const paced = { tapwire: newSamples(), dnsmasq: newSamples(), echo: newSamples() };
  const attributions: Attribution[] = [];
  const warmAttributions: Attribution[] = [];
  const mem: Record<string, { rss: number; pss: number; base?: number }> = {};
  // The client's (this process's) own collections are not any server's: every turn starts
  // with the bench's heap collected (and its sweeping done), the same before each server's
  // turn. Without it a mark-compact of the bench (2001 client sockets) stalled the one CPU
  // that client and servers share for up to 90 ms inside whichever server's turn it fell in
  // (the servers' loop delay showed it; their own GC pauses were 1-4 ms).
  const clientGc = { pauses: 0, max: 0 };
  const gcObserver = new PerformanceObserver((l) => {
    for (const e of l.getEntries()) {
      clientGc.pauses++;
      clientGc.max = Math.max(clientGc.max, e.duration);
    }
  });
  try {
    for (const w of SERVERS) {
      const t = topos[w];
      for (const s of t.sandboxes) clients[w].push(await DhcpTestClient.open(t.client.path, s.ifname, s.lease.mac));
    }
    const part = (w: Which): { topo: Topology; clients: DhcpTestClient[] } => ({ topo: topos[w], clients: clients[w] });
    /** each server's single client: its first sandbox's */
    const c = (w: Which): DhcpTestClient => clients[w][0]!;
    const sb = (w: Which): Sandbox => topos[w].sandboxes[0]!;
    const startAll = async (order: Which[]): Promise<Record<Which, Running & { baseKb?: number }>> => {
      const srv: Partial<Record<Which, Running & { baseKb?: number }>> = {};
      try {
        for (const w of order) {
          const p = part(w);
          srv[w] =
            w === 'dnsmasq'
              ? await startDnsmasq(p.topo, dir, p.clients)
              : await startTapwire(p.topo, dir, p.clients, w === 'tapwire' ? opts.nodeFlags : [], w === 'echo');
          srv[w].pids.forEach(pinTo);
        }
      } catch (e) {
        await Promise.all(Object.values(srv).map((s) => s.stop()));
        throw e;
      }
      return srv as Record<Which, Running & { baseKb?: number }>;
    };
    const stopAll = (srv: Record<Which, Running>): Promise<void[]> => Promise.all(SERVERS.map((w) => srv[w].stop()));
    const clientTurn = async (): Promise<void> => {
      gcObserver.disconnect();
      await collectGarbageAndSettle(20);
      gcObserver.observe({ entryTypes: ['gc'] });
    };
    /** `n` single-client rounds per server, the servers taking turns of `o.chunk` rounds */
    const interleaved = async (
      n: number,
      out?: Record<Which, Samples>,
      w?: Windows,
      o: { chunk: number; rewarm: boolean } = { chunk: turnRounds, rewarm: true },
    ): Promise<void> => {
      for (let k = 0; k * o.chunk < n; k++) {
        for (const x of turn(k)) {
          await clientTurn();
          // back on the CPU after the others' turns, one round unmeasured (its caches and
          // pages), as a block of its own would have had them
          if (o.rewarm) await oneClient(c(x), sb(x), 1, newSamples());
          const m = Math.min(o.chunk, n - k * o.chunk);
          await oneClient(c(x), sb(x), m, out?.[x] ?? newSamples(), x === 'tapwire' ? w : undefined);
        }
      }
    };
    /** paced bursts of `count` per server, in chunks of burstChunk, the servers taking turns */
    const pacedTurns = async (
      count: number,
      out?: Record<Which, Samples>,
      srv?: Record<Which, Running>,
    ): Promise<void> => {
      await srv?.tapwire.trace?.(); // the trace starts with the burst
      const results: BurstResult[] = [];
      for (let k = 0; k * burstChunk < count; k++) {
        for (const x of turn(k)) {
          const cl = c(x);
          await clientTurn();
          await oneClient(cl, sb(x), 1, newSamples()); // unmeasured, as in interleaved
          cl.detached = true;
          try {
            const b = await pacedBurst(
              cl.sock,
              cl.discover().encode(),
              cl.request(sb(x).lease.ip, SERVER_ID).encode(),
              {
                rate: burstRate,
                count: Math.min(burstChunk, count - k * burstChunk),
              },
            );
            if (out) {
              out[x].offer.push(...b.offer);
              out[x].ack.push(...b.ack);
              out[x].lost += b.lost;
            }
            if (x === 'tapwire') results.push(b);
          } finally {
            cl.detached = false;
          }
        }
      }
      const tr = await srv?.tapwire.trace?.();
      if (tr) {
        for (const b of results) {
          const a = attribute(b, tr);
          attributions.push(a);
          process.stderr.write(`dhcp burst trace (tapwire): ${JSON.stringify(a)}\n`);
        }
      }
    };
    /** The first coldRounds rounds after the servers' start, interleaved; their CPU readings before them. */
    const coldBlock = async (srv: Record<Which, Running>): Promise<Record<Which, number>> => {
      for (const x of SERVERS) await oneClient(c(x), sb(x), 3, newSamples()); // ARP
      const coldFrom = {
        tapwire: cold.tapwire.ack.length,
        dnsmasq: cold.dnsmasq.ack.length,
        echo: cold.echo.ack.length,
      };
      // the per-thread reads only when asked for: a few ms of /proc reads here leave the
      // servers idle before the rounds, and the first exchange after idle is the slowest
      const th0 = SERVERS.map((x) => (coldTrace ? threadCpu(srv[x].pids[0]!) : new Map<string, number>()));
      const me0 = coldTrace ? threadCpu(process.pid) : new Map<string, number>();
      const fc0 = coldTrace ? minorFaults(process.pid) : 0;
      const cpu0 = {
        tapwire: cpuNs(srv.tapwire.pids[0]!),
        dnsmasq: cpuNs(srv.dnsmasq.pids[0]!),
        echo: cpuNs(srv.echo.pids[0]!),
      };
      // just started: each server's first rounds in one turn of their own, nothing unmeasured first
      await interleaved(coldRounds, cold, undefined, { chunk: coldRounds, rewarm: false });
      if (coldTrace) {
        SERVERS.forEach((x, i) =>
          process.stderr.write(`cold ${x} threads: ${threadDelta(th0[i]!, threadCpu(srv[x].pids[0]!))}\n`),
        );
        process.stderr.write(
          `cold client threads: ${threadDelta(me0, threadCpu(process.pid))}; minor faults ${minorFaults(process.pid) - fc0}\n`,
        );
        const seq = (a: number[], from: number): string =>
          a
            .slice(from)
            .map((x) => x.toFixed(2))
            .join(' ');
        for (const x of SERVERS)
          process.stderr.write(
            `cold ${x} offer: ${seq(cold[x].offer, coldFrom[x])}\ncold ${x} ack: ${seq(cold[x].ack, coldFrom[x])}\n`,
          );
      }
      return cpu0;
    };
    const cpuLine = (srv: Record<Which, Running>, from: Record<Which, number>, n: number): string =>
      SERVERS.map((x) => `${x} ${((cpuNs(srv[x].pids[0]!) - from[x]) / 1e3 / (n * 3)).toFixed(1)}`).join(', ');
    // The client's own code (this process: exchange, decode, the paced burst) is warmed first,
    // unmeasured, against real replies: otherwise V8 compiled it during the first measured
    // rounds (TWB_DHCP_COLD_TRACE's client threads: 6 ms of compiler threads in them).
    {
      const srv = await startAll(['echo', 'dnsmasq', 'tapwire']);
      try {
        await interleaved(warmup);
        await pacedTurns(burstChunk);
      } finally {
        await stopAll(srv);
      }
    }
    // Two full blocks, then cold-only starts. All three servers run at once and take turns
    // (100 rounds, 250 paced exchanges), so that the drift of this
    // shared machine (a server's CPU per exchange rose 40-70% for minutes in some runs, for
    // all of them alike) hits each the same instead of deciding which block it lands on.
    for (let b = 0; b < coldStarts; b++) {
      const srv = await startAll(turn(b));
      try {
        const cpu0 = await coldBlock(srv);
        const coldCpu = cpuLine(srv, cpu0, coldRounds);
        if (b >= 2) continue; // cold rows only
        await interleaved(warmup); // warm-up (caches, JIT tiers)
        const cpu1 = {
          tapwire: cpuNs(srv.tapwire.pids[0]!),
          dnsmasq: cpuNs(srv.dnsmasq.pids[0]!),
          echo: cpuNs(srv.echo.pids[0]!),
        };
        const warmWindows: Windows | undefined = srv.tapwire.trace ? { offer: [], ack: [], renew: [] } : undefined;
        await srv.tapwire.trace?.(); // the trace starts with the warm rounds
        await interleaved(rounds, one, warmWindows);
        const warmTrace = await srv.tapwire.trace?.();
        if (warmTrace && warmWindows) {
          const a = attributeWindows([warmWindows.offer, warmWindows.ack, warmWindows.renew], warmTrace);
          warmAttributions.push(a);
          process.stderr.write(`dhcp warm trace (tapwire): ${JSON.stringify(a)}\n`);
        }
        // the answering thread's CPU time per exchange (schedstat: barely moved by the machine's load)
        process.stderr.write(
          `dhcp server cpu, us/exchange: first ${coldRounds} rounds ${coldCpu}; warm ${cpuLine(srv, cpu1, rounds)}\n`,
        );
        await pacedTurns(Math.ceil(burstCount / 2), paced, srv);
        for (let k = 0; k < passes; k++) {
          for (let i = 0; i < many; i++) {
            for (const x of i % 2 ? (['dnsmasq', 'tapwire'] as const) : (['tapwire', 'dnsmasq'] as const)) {
              await renew(clients[x][i]!, topos[x].sandboxes[i]!, rr[x]);
            }
          }
          for (const x of (k + b) % 2 ? (['dnsmasq', 'tapwire'] as const) : (['tapwire', 'dnsmasq'] as const)) {
            const p = part(x);
            await Promise.all(p.clients.map((cl, i) => renew(cl, p.topo.sandboxes[i]!, burst[x])));
          }
        }
        for (const x of ['tapwire', 'dnsmasq'] as const) {
          if (mem[x]) continue;
          const m = srv[x].pids.map(memKb).reduce((a, y) => ({ rss: a.rss + y.rss, pss: a.pss + y.pss }));
          const base = srv[x].baseKb;
          mem[x] = { ...m, ...(base !== undefined ? { base } : {}) };
        }
      } finally {
        await stopAll(srv);
      }
    }
  } finally {
    gcObserver.disconnect();
    if (unpinned) pin(process.pid, unpinned);
    await Promise.all(SERVERS.flatMap((w) => clients[w].map((cl) => cl.close())));
    for (const t of Object.values(topos)) dropNetns(t.client, ...t.sandboxes.map((s) => s.ns));
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
    title: `DHCP reply latency (ms), tapwire vs dnsmasq, same static lease (${rounds * 2} single-client rounds; ${many} sandboxes x ${passes * 2} passes)`,
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
      `The three servers run at once, each on its own ${many} sandboxes (the Node floor on one), and take turns of ${turnRounds} rounds ` +
        "(each turn after one unmeasured round), so that the drift of this shared machine hits each alike. Every p50/p99 pools all of a server's rounds.",
      `warm = after ${warmup} rounds in the same block (two blocks); "first ${coldRounds} rounds after start" = the first rounds after the servers started ` +
        `and every sandbox's server answered one INFORM (the same readiness for every server), over ${coldStarts} starts.`,
      `Each turn starts with the bench process's heap collected (the client's); its GC pauses after those collections (in the turns and the many-sandbox rows): ${clientGc.pauses}, longest ${fmt(clientGc.max, 2)} ms.`,
      `Started after ${fmt(quiet.waitedMs / 1000, 1)} s of waiting for a quiet machine (no kernel netns cleanup for 3 s, 1-minute load ${quiet.load1} < 1).`,
      'Latency = client send to the reply arriving at the client socket (client in the bench process, servers in their own processes). ' +
        't/d < 1 means tapwire is faster.',
      `Lost (no reply in 2 s): tapwire ${T.lost + rr.tapwire.lost + burst.tapwire.lost}, dnsmasq ${D.lost + rr.dnsmasq.lost + burst.dnsmasq.lost}.`,
      cpu >= 0
        ? `Client and every server process pinned to CPU ${cpu} (taskset), so that the scheduler's choice of core does not decide the ratio.`
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
  const PT = summarize(paced.tapwire.offer);
  const PD = summarize(paced.dnsmasq.offer);
  const AT = summarize(paced.tapwire.ack);
  const AD = summarize(paced.dnsmasq.ack);
  const maxOf = (x: Samples): number => Math.max(summarize(x.offer).max, summarize(x.ack).max);
  const sum = (f: (a: Attribution) => number): number => attributions.reduce((n, a) => n + f(a), 0);
  const burstTable: Table = {
    title: `DHCP paced burst (ms): ${burstRate} exchanges/s x ${burstCount} per server, DISCOVER -> OFFER then REQUEST -> ACK, one client, ${many} servers live`,
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
        'the same static lease and MAC for all, told apart by xid. The client socket is in the client netns behind a veth into the sandbox bridge (the path the other rows take); ' +
        `requests are encoded once and replies read in place so that the client allocates next to nothing. The servers take turns of ${burstChunk} exchanges (each after one unmeasured round; half the count in each of the two blocks).`,
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
    title: `DHCP server memory at ${many} sandboxes`,
    columns: ['server', 'processes', 'RSS MB', 'PSS MB', 'KB per sandbox (RSS)', 'KB per sandbox (PSS)'],
    rows: [
      [
        'tapwire (one process, all servers)',
        1,
        fmt((tw?.rss ?? NaN) / 1024, 1),
        fmt((tw?.pss ?? NaN) / 1024, 1),
        fmt(((tw?.rss ?? NaN) - (tw?.base ?? NaN)) / many, 1),
        '-',
      ],
      [
        'dnsmasq (one per sandbox)',
        many,
        fmt((dm?.rss ?? NaN) / 1024, 1),
        fmt((dm?.pss ?? NaN) / 1024, 1),
        fmt((dm?.rss ?? NaN) / many, 1),
        fmt((dm?.pss ?? NaN) / many, 1),
      ],
    ],
    notes: [
      `tapwire KB per sandbox = (RSS - RSS of the process before any server, ${fmt((tw?.base ?? NaN) / 1024, 1)} MB) / ${many}.`,
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
    rounds: Number(process.argv[3] ?? 1000),
    nodeFlags,
    warmup: Number(process.argv[4] ?? 1000),
    ...(process.env.TWB_DHCP_BURST ? { burstCount: Number(process.env.TWB_DHCP_BURST) } : {}),
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
