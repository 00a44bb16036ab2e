// Bench suite 6: tapwire-cri as a CRI proxy in front of containerd 1.6 (the test suite's
// rig: containerd and runc from Debian in namespaces of their own, a pause image built and
// imported here; src/demo/containerd/rig.ts), with the real tapmanager.
//  - Per unary call: the same call straight at containerd's socket and through the
//    tapwire-cri binary (--backend), interleaved one by one, with gRPC clients built from the
//    official proto. Version and PodSandboxStatus (of an ordinary pod: passthrough).
//  - RunPodSandbox: an ordinary pod straight at containerd, the same through the proxy, and
//    a VM pod (handler `tapwire`) through the proxy, interleaved; each is stopped and removed
//    before the next. The proxy runs in this process here, so tapmanager's setup is timed
//    inside it (its client wrapped) in the same runs. The goal: a VM pod costs no
//    more than an ordinary one plus tapwire's own setup, ~10 ms.
// Skips, saying so, when containerd (or what the rig needs) is not installed.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mountState } from '../src/cri/netns';
import { kernelPrefixes } from '../src/cri/proxy/kernel-prefixes';
import { NetnsPins } from '../src/cri/proxy/pin-netns';
import { ProxyServer } from '../src/cri/proxy/server';
import { DEFAULT_VM_SELECTOR } from '../src/cri/proxy/vm-requests';
import { VmPodStore } from '../src/cri/proxy/vm-store';
import { VmPods } from '../src/cri/proxy/vm-pods';
import type { TapmanagerApi } from '../src/tapmanager/client';
import { criClient, type CriClient } from '../test/fixtures/cni/cri-harness';
import { startProxy, type ProxyProc } from '../test/fixtures/containerd/proxy-proc';
import { startContainerd, sweepRigs, type Containerd } from '../src/demo/containerd/rig';
import { benchDir, dropDir, onCleanup, track } from './resources';
import { startDaemon, stopDaemon, type Daemon } from './setup';
import { atMost, fmt, ratio, summarize, type SuiteResult } from './table';

const TOOLS = ['containerd', 'containerd-shim-runc-v2', 'runc', 'ctr', 'gcc', 'unshare', 'nsenter'];
const SUITE = 'proxy';
/** the estimate of tapwire's own setup time, which a VM pod may add */
const ADDED_GOAL_MS = 10;

/** Why the suite cannot run here, or undefined. */
export function proxySkipReason(): string | undefined {
  const missing = TOOLS.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (!missing.length) return undefined;
  return `${missing.includes('containerd') ? 'containerd is not installed' : 'the containerd rig needs more'} (missing: ${missing.join(', ')})`;
}

const now = (): bigint => process.hrtime.bigint();
const ms = (a: bigint, b: bigint): number => Number(b - a) / 1e6;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = now();
  await fn();
  return ms(t0, now());
}

/**
 * Times, per VM pod, what tapwire-cri does inside RunPodSandbox besides the backend's own
 * RunPodSandbox (its whole VM path minus that call): paired per pod, so the noise of
 * containerd's ~100 ms does not enter it. Wraps VmPods' methods for the suite's duration
 * (as bench/cri.ts wraps tapwire-cri's); returns the undo.
 */
function instrumentVmPods(own: number[]): () => void {
  type Proto = Record<string, (...a: unknown[]) => Promise<unknown>>;
  const proto = VmPods.prototype as unknown as Proto;
  const runVm = proto.runVm!;
  const call = proto.call!;
  let backend = 0;
  proto.call = async function (this: unknown, ...a: unknown[]) {
    const t0 = now();
    try {
      return await call.apply(this, a);
    } finally {
      if (a[0] === 'RunPodSandbox') backend = ms(t0, now());
    }
  };
  proto.runVm = async function (this: unknown, ...a: unknown[]) {
    const t0 = now();
    backend = 0;
    const out = await runVm.apply(this, a);
    own.push(ms(t0, now()) - backend);
    return out;
  };
  return () => {
    proto.runVm = runVm;
    proto.call = call;
  };
}

/** fn's result; its duration pushed to `into` */
async function timedInto<T>(into: number[], fn: () => Promise<T>): Promise<T> {
  const t0 = now();
  try {
    return await fn();
  } finally {
    into.push(ms(t0, now()));
  }
}

function timedTapmanager(inner: TapmanagerApi, setups: number[]): TapmanagerApi {
  return {
    setup: (req) => timedInto(setups, () => inner.setup(req)),
    teardown: (id) => inner.teardown(id),
    status: (id) => inner.status(id),
    list: () => inner.list(),
  };
}

let pods = 0;
function podConfig(dir: string, kind: string): Record<string, unknown> {
  const name = `twb-${kind}-${pods++}`;
  return {
    metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 },
    linux: {},
    logDirectory: path.join(dir, 'logs', name),
  };
}

export async function runProxySuite(opts: { calls?: number; rounds?: number } = {}): Promise<SuiteResult> {
  const skip = proxySkipReason();
  if (skip) return { tables: [], targets: [], skipped: skip };
  const calls = opts.calls ?? 500;
  const rounds = opts.rounds ?? 40;
  await sweepRigs((m) => console.error(`bench: ${m}`));
  const dir = benchDir('proxy');
  let rig: Containerd | undefined;
  let daemon: Daemon | undefined;
  let proc: ProxyProc | undefined;
  let inproc: ProxyServer | undefined;
  const clients: CriClient[] = [];
  // a SIGINT mid-run: containerd goes with SIGKILL, the next run's sweepRigs removes its rig dir
  const undoHook = onCleanup(() => rig && process.kill(rig.pid, 'SIGKILL'));
  let undoInstrument: (() => void) | undefined;
  try {
    rig = await startContainerd({ label: 'bench' });
    daemon = await startDaemon();
    const control = path.join(daemon.dir, 'control.sock');
    const fdSocket = path.join(daemon.dir, 'fd.sock');
    proc = await startProxy(path.join(dir, 'cri.sock'), `unix://${rig.socket}`, [
      ...['--tapmanager-socket', control, '--fd-socket', fdSocket, '--reconcile-interval', '0'],
    ]);
    track(proc.child);
    const setups: number[] = [];
    const ownVm: number[] = [];
    undoInstrument = instrumentVmPods(ownVm);
    const pinning: number[] = [];
    const prefixing: number[] = [];
    const pins = new NetnsPins(path.join(dir, 'inproc-netns'));
    inproc = new ProxyServer({
      backend: `unix://${rig.socket}`,
      vm: {
        tapmanager: timedTapmanager(daemon.client, setups),
        selector: DEFAULT_VM_SELECTOR,
        fdSocket,
        pins: {
          pin: (id, pid) => timedInto(pinning, () => pins.pin(id, pid)),
          unpin: (id) => pins.unpin(id),
        },
        store: new VmPodStore(path.join(dir, 'inproc-state', 'vm-pods')),
        prefixes: (ns, ifname) => timedInto(prefixing, () => kernelPrefixes(ns, ifname)),
        reconcileMs: 0,
      },
    });
    await inproc.listen(path.join(dir, 'inproc.sock'));
    const direct = criClient(rig.socket);
    const via = criClient(proc.socket);
    const viaIn = criClient(path.join(dir, 'inproc.sock'));
    clients.push(direct, via, viaIn);

    // 1. unary calls, one by one, direct and through the proxy interleaved
    const { podSandboxId: statusPod } = await direct.runtime.RunPodSandbox!({ config: podConfig(dir, 'status') });
    const unary: [string, string, object][] = [
      ['Version', 'Version', {}],
      ['PodSandboxStatus (ordinary pod)', 'PodSandboxStatus', { podSandboxId: statusPod }],
    ];
    const unaryRows: (string | number)[][] = [];
    const unaryData: Record<string, { direct: number[]; proxy: number[] }> = {};
    for (const [label, method, req] of unary) {
      const d: number[] = [];
      const p: number[] = [];
      for (let i = -50; i < calls; i++) {
        const a = await timed(() => direct.runtime[method]!(req));
        const b = await timed(() => via.runtime[method]!(req));
        if (i >= 0) {
          d.push(a);
          p.push(b);
        }
      }
      unaryData[label] = { direct: d, proxy: p };
      const sd = summarize(d);
      const sp = summarize(p);
      unaryRows.push([
        label,
        fmt(sd.p50, 3),
        fmt(sd.p99, 3),
        fmt(sp.p50, 3),
        fmt(sp.p99, 3),
        fmt(sp.p50 - sd.p50, 3),
        fmt(sp.p99 - sd.p99, 3),
        ratio(sp.p50, sd.p50),
      ]);
    }
    await direct.runtime.StopPodSandbox!({ podSandboxId: statusPod });
    await direct.runtime.RemovePodSandbox!({ podSandboxId: statusPod });

    // 2. RunPodSandbox: ordinary direct, ordinary through the proxy, VM pod through the proxy
    const kinds = [
      { key: 'direct', label: 'ordinary pod, straight at containerd', client: direct, handler: '' },
      { key: 'plain', label: 'ordinary pod, through tapwire-cri', client: viaIn, handler: '' },
      { key: 'vm', label: 'VM pod (handler tapwire), through tapwire-cri', client: viaIn, handler: 'tapwire' },
    ] as const;
    const run: Record<string, number[]> = { direct: [], plain: [], vm: [] };
    const stop: Record<string, number[]> = { direct: [], plain: [], vm: [] };
    const verboseStatus: number[] = [];
    for (let i = -2; i < rounds; i++) {
      for (const k of kinds) {
        const rt = k.client.runtime;
        let id = '';
        const t = await timed(async () => {
          id = (await rt.RunPodSandbox!({ config: podConfig(dir, k.key), runtimeHandler: k.handler })).podSandboxId;
        });
        if (k.key === 'vm' && i >= 0) {
          // what the proxy's own verbose PodSandboxStatus of the new sandbox costs containerd (an estimate)
          verboseStatus.push(await timed(() => direct.runtime.PodSandboxStatus!({ podSandboxId: id, verbose: true })));
        }
        const s = await timed(async () => {
          await rt.StopPodSandbox!({ podSandboxId: id });
          await rt.RemovePodSandbox!({ podSandboxId: id });
        });
        if (i >= 0) {
          run[k.key]!.push(t);
          stop[k.key]!.push(s);
        }
      }
    }
    const setupStats = summarize(setups.slice(-rounds));
    const pinStats = summarize(pinning.slice(-rounds));
    const prefixStats = summarize(prefixing.slice(-rounds));
    const verboseStats = summarize(verboseStatus);
    const ownStats = summarize(ownVm.slice(-rounds));
    const r = Object.fromEntries(kinds.map((k) => [k.key, summarize(run[k.key]!)]));
    const st = Object.fromEntries(kinds.map((k) => [k.key, summarize(stop[k.key]!)]));
    const added = r.vm!.p50 - r.plain!.p50;
    return {
      tables: [
        {
          title: `tapwire-cri --backend containerd: one unary call (ms; ${calls} calls each, interleaved one by one)`,
          columns: [
            'call',
            'containerd p50',
            'p99',
            'via tapwire-cri p50',
            'p99',
            'added p50',
            'added p99',
            'ratio p50',
          ],
          rows: unaryRows,
          notes: [
            'The tapwire-cri binary as a separate process; the client is a gRPC client from the official proto in the bench process.',
          ],
        },
        {
          title: `RunPodSandbox on containerd 1.6 (ms; ${rounds} runs of each kind, interleaved)`,
          columns: ['pod', 'RunPodSandbox p50', 'p99', 'Stop+Remove p50', 'p99'],
          rows: [
            ...kinds.map((k) => [
              k.label,
              fmt(r[k.key]!.p50),
              fmt(r[k.key]!.p99),
              fmt(st[k.key]!.p50),
              fmt(st[k.key]!.p99),
            ]),
            ['VM pod minus ordinary pod (both through tapwire-cri; difference of the p50s)', fmt(added), '-', '-', '-'],
            [
              "tapwire's own part of a VM pod's RunPodSandbox (all but containerd's call, per pod)",
              fmt(ownStats.p50),
              fmt(ownStats.p99),
              '-',
              '-',
            ],
            ['of which tapmanager setup (timed inside the proxy)', fmt(setupStats.p50), fmt(setupStats.p99), '-', '-'],
            ['of which the netns pin', fmt(pinStats.p50), fmt(pinStats.p99), '-', '-'],
            ["of which the veth's prefix lengths", fmt(prefixStats.p50), fmt(prefixStats.p99), '-', '-'],
            [
              "of which containerd's verbose PodSandboxStatus (the same call made again, directly)",
              fmt(verboseStats.p50),
              fmt(verboseStats.p99),
              '-',
              '-',
            ],
          ],
          notes: [
            'The proxy for RunPodSandbox runs in the bench process (its tapmanager client is wrapped to time the setup); ' +
              'the rest of what a VM pod adds is the verbose PodSandboxStatus the proxy asks containerd for and the ' +
              'record writes. p50s of the parts need not add up to the difference of the p50s.',
          ],
        },
      ],
      targets: [
        atMost(SUITE, "VM pod RunPodSandbox: tapwire's own part, p50 (ms)", ownStats.p50, ADDED_GOAL_MS, ' ms'),
      ],
      data: {
        unary: unaryData,
        run,
        stop,
        tapmanagerSetup: setups,
        pin: pinning,
        prefixes: prefixing,
        verboseStatus,
        tapwireOwn: ownVm,
      },
    };
  } finally {
    undoInstrument?.();
    for (const c of clients) c.close();
    await inproc?.close(1000).catch(() => undefined);
    await proc?.stop();
    await rig?.stop();
    undoHook();
    if (daemon) await stopDaemon(daemon);
    for (const pins of ['inproc-netns', 'proxy-netns']) unmountPins(path.join(dir, pins));
    dropDir(dir);
  }
}

/** The proxy's netns pin directory (a mount point, as /run/netns) and any pin left in it. */
function unmountPins(pins: string): void {
  const umount = (p: string): void => {
    try {
      execFileSync('umount', ['--lazy', p], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
  };
  if (!fs.existsSync(pins)) return;
  for (const f of fs.readdirSync(pins)) umount(path.join(pins, f));
  while (mountState(pins) !== 'none') umount(pins);
}
