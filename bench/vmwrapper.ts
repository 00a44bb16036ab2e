// Bench suite: vmwrapper's startup cost, exec to execve. A stub emulator records
// `date +%s%N` when it starts; each sample is that stamp minus the wall-clock time just
// before spawn. Compared with bare `node -e 0` (spawn to exit) and with exec'ing the stub
// directly (the stub's own start-up, subtracted from vmwrapper's figures). Runnable alone:
// `node dist/bench/vmwrapper.js [rounds]`.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startFakeFdServer } from '../test/fixtures/vmwrapper/fake-fd-server';
import { benchDir, dropDir, installCleanup } from './resources';
import { atMost, fmt, ratio, renderTable, summarize, SuiteResult } from './table';

const ROOT = path.resolve(__dirname, '..', '..');
const WRAPPER = path.join(ROOT, 'dist/src/vmwrapper/main.js');
const SHIM = path.join(ROOT, 'deploy/libvirt/vmwrapper');
const STUB = path.join(ROOT, 'test/fixtures/vmwrapper/stub-emulator.sh');

/** Wall clock in ns (same clock as `date +%s%N`), sub-ms resolution. */
function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

function runOnce(file: string, args: string[], env: Record<string, string>): Promise<{ t0: bigint; end: bigint }> {
  return new Promise((resolve, reject) => {
    const t0 = nowNs();
    const p = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: '/usr/bin:/bin', ...env } });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0 ? resolve({ t0, end: nowNs() }) : reject(new Error(`${file} exited ${code}: ${err}`)),
    );
  });
}

/** ms from spawn to the stub's START stamp. */
async function toStub(file: string, args: string[], env: Record<string, string>, out: string): Promise<number> {
  const { t0 } = await runOnce(file, args, { ...env, STUB_OUT: out });
  const m = /^START (\d+)$/m.exec(fs.readFileSync(out, 'utf8'));
  if (!m) throw new Error(`stub wrote no START line to ${out}`);
  return Number(BigInt(m[1]!) - t0) / 1e6;
}

export async function runVmwrapperBench(opts: { rounds?: number } = {}): Promise<SuiteResult> {
  const rounds = opts.rounds ?? 30;
  if (!fs.existsSync(WRAPPER)) throw new Error(`${WRAPPER} is missing: run "npm run build" first`);
  const dir = benchDir('vmw');
  const out = path.join(dir, 'stub.out');
  const held: number[] = [];
  const server = await startFakeFdServer(() => {
    const fd = fs.openSync('/dev/null', 'r');
    held.push(fd);
    return {
      reply: {
        ok: true,
        result: {
          sandboxId: 'sb-b',
          nics: [
            { mac: '02:00:00:00:00:01', model: 'virtio-net-pci', queues: 1, vnetHdr: true, tap: 't', vhost: false },
          ],
        },
      },
      fds: [fd],
    };
  });
  const keyEnv = { TAPWIRE_NET_KEY: 'sb-b:tok', TAPWIRE_FD_SOCKET: server.socketPath, TAPWIRE_EMULATOR: STUB };
  const cases: { name: string; sample: () => Promise<number> }[] = [
    { name: "stub emulator exec'd directly", sample: () => toStub(STUB, [], {}, out) },
    {
      name: 'bare node -e 0 (spawn to exit)',
      sample: async () => {
        const r = await runOnce(process.execPath, ['-e', '0'], {});
        return Number(r.end - r.t0) / 1e6;
      },
    },
    {
      name: 'vmwrapper, no key (node main.js)',
      sample: () => toStub(process.execPath, [WRAPPER], { TAPWIRE_EMULATOR: STUB }, out),
    },
    {
      name: 'vmwrapper, key + fd fetch (node main.js)',
      sample: () => toStub(process.execPath, [WRAPPER], keyEnv, out),
    },
    {
      name: 'vmwrapper, key + fd fetch (shell shim)',
      sample: () => toStub(SHIM, [], { ...keyEnv, TAPWIRE_NODE: process.execPath }, out),
    },
  ];
  const results = new Map<string, number[]>();
  try {
    for (const c of cases) await c.sample(); // warm the page cache
    for (let i = 0; i < rounds; i++) {
      for (const c of cases) {
        const v = await c.sample();
        results.set(c.name, [...(results.get(c.name) ?? []), v]);
        for (const fd of held.splice(0)) fs.closeSync(fd);
      }
    }
  } finally {
    await server.close();
    dropDir(dir);
  }
  const stub = summarize(results.get(cases[0]!.name)!).p50;
  const bare = summarize(results.get(cases[1]!.name)!).p50;
  const rows = cases.map((c, i) => {
    const s = summarize(results.get(c.name)!);
    // exec-to-execve: time to the stub's first line minus the stub's own start-up
    const own = i >= 2 ? s.p50 - stub : NaN;
    return [
      c.name,
      fmt(s.p50),
      fmt(s.p99),
      i >= 2 ? fmt(own) : '-',
      i >= 2 ? ratio(own, bare) : i === 1 ? '1.00x' : '-',
    ];
  });
  const own = (i: number): number => summarize(results.get(cases[i]!.name)!).p50 - stub;
  const tables = [
    {
      title: `vmwrapper start-up, exec to execve (${rounds} rounds, ms)`,
      columns: ['case', 'p50 spawn→stub start', 'p99', 'p50 exec→execve', 'vs bare node'],
      rows,
      notes: [
        "exec→execve = p50 to the stub's `date +%s%N` minus the p50 of exec'ing the stub directly; bare node is spawn to exit of `node -e 0`.",
        "The fd fetch is served by an in-process fake fd server (one /dev/null fd), so the daemon's own cost is not included.",
      ],
    },
  ];
  return {
    tables,
    targets: [
      atMost('vmwrapper', 'exec->execve p50 (node main.js, key + fd fetch) / bare node -e 0', own(3) / bare, 1.5),
      atMost('vmwrapper', 'exec->execve p50 (shell shim, key + fd fetch) / bare node -e 0', own(4) / bare, 1.5),
    ],
    data: Object.fromEntries([...results].map(([k, v]) => [k, summarize(v)])),
  };
}

if (require.main === module) {
  installCleanup();
  const rounds = Number(process.argv[2] ?? 30);
  runVmwrapperBench({ rounds })
    .then((r) => r.tables.forEach((t) => console.log(`${renderTable(t)}\n`)))
    .catch((e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    });
}
