// Bench suite 5: CRI RunPodSandbox end to end, over gRPC (a client built from the official
// proto), with the real loopback + bridge + host-local plugins from /usr/lib/cni and the
// real tapmanager daemon from dist/. Each run is split into: netns (creating and pinning
// the sandbox netns), CNI ADD (loopback and the pod network), tapmanager (its setup over
// the control socket) and the rest (gRPC, validation, record writes). The split comes from
// wrapping those calls in this process, where tapwire-cri's SandboxService runs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CniRunner } from '../src/cni/network';
import * as criNetns from '../src/cri/netns';
import { SandboxService } from '../src/cri/sandboxes';
import { CriServer } from '../src/cri/server';
import type { TapmanagerApi } from '../src/tapmanager/client';
import { criClient, podConfig } from '../test/fixtures/cni/cri-harness';
import { adoptNetns, benchDir, benchName, benchNetns, dropDir, dropNetns } from './resources';
import { startDaemon, stopDaemon } from './setup';
import { fmt, summarize, SuiteResult } from './table';

const PLUGINS = '/usr/lib/cni';

const now = (): bigint => process.hrtime.bigint();
const ms = (a: bigint, b: bigint): number => Number(b - a) / 1e6;

/** Accumulates the time spent inside wrapped calls, per phase, for the run in progress. */
class Phases {
  current = { netns: 0, cni: 0, tapmanager: 0 };
  reset(): void {
    this.current = { netns: 0, cni: 0, tapmanager: 0 };
  }
  async time<T>(phase: 'netns' | 'cni' | 'tapmanager', fn: () => Promise<T>): Promise<T> {
    const t0 = now();
    try {
      return await fn();
    } finally {
      this.current[phase] += ms(t0, now());
    }
  }
}

/** Wraps module exports / prototype methods for the suite's duration; returns the undo. */
function instrument(phases: Phases): () => void {
  const origNetns = criNetns.createPersistentNetns;
  const origAdd = CniRunner.prototype.add;
  // tapwire-cri calls these through the module object (CommonJS), so replacing the export is seen
  Object.defineProperty(criNetns, 'createPersistentNetns', {
    value: (file: string) => phases.time('netns', () => origNetns(file)),
    writable: true,
    configurable: true,
  });
  CniRunner.prototype.add = function (this: CniRunner, ...a: Parameters<CniRunner['add']>) {
    return phases.time('cni', () => origAdd.apply(this, a));
  };
  return () => {
    Object.defineProperty(criNetns, 'createPersistentNetns', { value: origNetns, writable: true, configurable: true });
    CniRunner.prototype.add = origAdd;
  };
}

function timedTapmanager(inner: TapmanagerApi, phases: Phases): TapmanagerApi {
  return {
    setup: (req) => phases.time('tapmanager', () => inner.setup(req)),
    teardown: (id) => inner.teardown(id),
    status: (id) => inner.status(id),
    list: () => inner.list(),
  };
}

export async function runCriSuite(opts: { rounds?: number } = {}): Promise<SuiteResult> {
  const rounds = opts.rounds ?? 20;
  if (!fs.existsSync(path.join(PLUGINS, 'bridge'))) throw new Error(`no CNI bridge plugin in ${PLUGINS}`);
  const tmp = benchDir('cri');
  const node = benchNetns('crinode');
  const net = 100 + Math.floor(Math.random() * 100);
  fs.mkdirSync(path.join(tmp, 'net.d'));
  fs.writeFileSync(
    path.join(tmp, 'net.d', '10-twbench.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'twbench',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipam: {
            type: 'host-local',
            subnet: `10.${net}.0.0/24`,
            dataDir: path.join(tmp, 'ipam'),
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
      ],
    }),
  );
  const phases = new Phases();
  const undo = instrument(phases);
  const daemon = await startDaemon();
  const pinned: string[] = [];
  const samples: { total: number; netns: number; cni: number; tapmanager: number; rest: number; stop: number }[] = [];
  let server: CriServer | undefined;
  let client: ReturnType<typeof criClient> | undefined;
  try {
    const sandboxes = new SandboxService({
      cniConfDir: path.join(tmp, 'net.d'),
      cniBinDirs: [PLUGINS],
      stateDir: path.join(tmp, 'state'),
      netnsDir: '/run/netns',
      netnsName: () => {
        const n = benchName('cri');
        adoptNetns(n);
        pinned.push(n);
        return n;
      },
      cniHostNetns: node.path,
      tapmanager: timedTapmanager(daemon.client, phases),
    });
    await sandboxes.start();
    server = new CriServer({ sandboxes });
    const sock = path.join(tmp, 'cri.sock');
    await server.listen(sock);
    client = criClient(sock);
    const rt = client.runtime;
    for (let i = -2; i < rounds; i++) {
      // two unmeasured runs first (gRPC channel, page cache)
      phases.reset();
      const t0 = now();
      const { podSandboxId: id } = await rt.RunPodSandbox!({ config: podConfig(`vm${i + 2}`) });
      const total = ms(t0, now());
      const p = { ...phases.current };
      const t1 = now();
      await rt.StopPodSandbox!({ podSandboxId: id });
      await rt.RemovePodSandbox!({ podSandboxId: id });
      const stop = ms(t1, now());
      if (i >= 0) samples.push({ total, ...p, rest: total - p.netns - p.cni - p.tapmanager, stop });
    }
  } finally {
    client?.close();
    await server?.close(1000).catch(() => undefined);
    await stopDaemon(daemon);
    undo();
    dropNetns(...pinned, node);
    dropDir(tmp);
  }
  const col = (k: keyof (typeof samples)[number]) => summarize(samples.map((s) => s[k]));
  const total = col('total');
  const parts = (['netns', 'cni', 'tapmanager', 'rest'] as const).map((k) => [k, col(k)] as const);
  const label: Record<string, string> = {
    netns: 'netns (create + pin under /run/netns)',
    cni: 'CNI ADD (loopback + bridge/host-local, via nsenter)',
    tapmanager: 'tapmanager setup (real daemon, control socket)',
    rest: 'rest (gRPC, validation, record writes)',
  };
  const stop = col('stop');
  return {
    tables: [
      {
        title: `CRI RunPodSandbox end to end (ms; ${rounds} sequential runs; real bridge plugin, real tapmanager)`,
        columns: ['part', 'p50', 'p99', 'share of p50 total'],
        rows: [
          ...parts.map(([k, s]) => [label[k]!, fmt(s.p50), fmt(s.p99), `${fmt((s.p50 / total.p50) * 100, 0)}%`]),
          ['RunPodSandbox total (gRPC client)', fmt(total.p50), fmt(total.p99), '100%'],
          ['StopPodSandbox + RemovePodSandbox', fmt(stop.p50), fmt(stop.p99), '-'],
        ],
        notes: [
          'Parts are timed by wrapping createPersistentNetns, CniRunner.add and the tapmanager client inside tapwire-cri; ' +
            'p50s of the parts need not add up to the p50 of the total.',
        ],
      },
    ],
    targets: [],
    data: { samples },
  };
}
