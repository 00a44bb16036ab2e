// `npm run bench [-- --only setup,dhcp] [-- --quick] [-- --json FILE]`: runs the bench suites
// (needs root and `npm run build`), prints a table per suite as it finishes and then every
// target from issue 7 as MET or MISSED with the margin. Every comparison is a ratio measured
// in the same run. What a suite creates is named twb-<pid>-... and removed at the end, on
// failure and on SIGINT/SIGTERM; leftovers of a killed run are swept at start.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runBindingsSuite } from './bindings';
import { runCriSuite } from './cri';
import { runProxySuite } from './cri-proxy';
import { runDhcpSuite } from './dhcp';
import { runDhcp6Suite } from './dhcp6';
import { runMetricsSuite } from './metrics';
import { installCleanup, sweepStale } from './resources';
import { runNicsSuite, runScaleSuite, runSetupSuite } from './setup';
import { renderTable, SuiteResult, Table } from './table';
import { runVmwrapperBench } from './vmwrapper';

const ROOT = path.resolve(__dirname, '..', '..');

interface Suite {
  name: string;
  what: string;
  run(quick: boolean): Promise<SuiteResult>;
}

/** Extra node flags for a daemon under test, e.g. TWB_TAPMANAGER_NODE_FLAGS="--cpu-prof". */
function envFlags(name: string, fallback: string[] = []): string[] {
  const v = process.env[name];
  return v === undefined ? fallback : v.split(' ').filter(Boolean);
}

/** The node flags tapmanager runs with in production: those of /usr/bin/tapmanager (deploy/bin), which the unit runs. */
function unitNodeFlags(): string[] {
  try {
    const wrapper = fs.readFileSync(path.resolve(__dirname, '../../deploy/bin/tapmanager'), 'utf8');
    const exec = /^exec node((?:\s+--\S+)*)\s/m.exec(wrapper);
    return exec ? exec[1]!.split(/\s+/).filter(Boolean) : [];
  } catch {
    return [];
  }
}

const SUITES: Suite[] = [
  {
    name: 'setup',
    what: '1. setup/teardown latency vs the reference plumber and the netlink floor',
    run: (q) => runSetupSuite(q ? { rounds: 5, singleRounds: 9, refRounds: 3, concurrency: [1, 10] } : {}),
  },
  {
    name: 'nics',
    what: '1b. setup/teardown of one sandbox with 1 vs 3 NICs (nics request)',
    run: (q) => runNicsSuite(q ? { rounds: 8 } : {}),
  },
  {
    name: 'bindings',
    what: '1c. setup/teardown of one NIC per binding (bridge vs masquerade) and the NAT batch',
    run: (q) => runBindingsSuite(q ? { rounds: 8 } : {}),
  },
  {
    name: 'scale',
    what: '2. 1/100/500/1000 live sandboxes: RSS, fds, next setup, vs one dnsmasq each',
    run: (q) =>
      runScaleSuite({
        ...(q ? { scale: [1, 50] } : {}),
        nodeFlags: envFlags('TWB_TAPMANAGER_NODE_FLAGS', unitNodeFlags()),
      }),
  },
  {
    name: 'dhcp',
    what: '3. DHCP DISCOVER->OFFER, REQUEST->ACK, renewals at 1000 sandboxes, vs dnsmasq',
    run: (q) =>
      runDhcpSuite({
        ...(q ? { many: 50, rounds: 100, warmup: 300, passes: 1, burstCount: 500 } : {}),
        nodeFlags: envFlags('TWB_DHCP_NODE_FLAGS', unitNodeFlags()), // the daemon's young generation
      }),
  },
  {
    name: 'dhcp6',
    what: '3b. DHCPv6 SOLICIT->ADVERTISE, REQUEST->REPLY vs dnsmasq (same static address)',
    run: (q) => runDhcp6Suite(q ? { rounds: 100 } : {}),
  },
  {
    name: 'vmwrapper',
    what: '4. vmwrapper exec->execve vs bare node and the emulator exec',
    run: (q) => runVmwrapperBench(q ? { rounds: 10 } : {}),
  },
  {
    name: 'cri',
    what: '5. CRI RunPodSandbox end to end, split',
    run: (q) => runCriSuite(q ? { rounds: 5 } : {}),
  },
  {
    name: 'proxy',
    what: '6. tapwire-cri --backend containerd: unary call overhead, RunPodSandbox of a VM pod vs an ordinary one',
    run: (q) => runProxySuite(q ? { calls: 100, rounds: 3 } : {}),
  },
  {
    name: 'metrics',
    what: '7. one Prometheus scrape at 50/200/1000 live sandboxes vs one status request each',
    run: (q) =>
      runMetricsSuite({
        ...(q ? { scale: [50], rounds: 3 } : {}),
        nodeFlags: envFlags('TWB_TAPMANAGER_NODE_FLAGS', unitNodeFlags()),
      }),
  },
];

const USAGE = `usage: npm run bench -- [--only ${SUITES.map((s) => s.name).join(',')}] [--quick] [--json FILE]
${SUITES.map((s) => `  ${s.name.padEnd(10)} ${s.what}`).join('\n')}
  --quick     fewer rounds and smaller scales (a smoke run; ratios are noisier)
  --json FILE write every table, target and raw figure as JSON
env: TWB_TAPMANAGER_NODE_FLAGS (scale suite's daemon; default: the node flags of deploy/bin/tapmanager, which the unit runs),
     TWB_DHCP_NODE_FLAGS (DHCP server process),
     e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" or "--max-semi-space-size=1"
`;

function parseArgs(argv: string[]): { only: Suite[]; quick: boolean; json?: string } {
  let only = SUITES;
  let quick = false;
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined || v === '') throw new Error(`${a.split('=')[0]} needs a value`);
      return v;
    };
    if (a === '--quick') quick = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const names = value().split(',');
      const bad = names.filter((n) => !SUITES.some((s) => s.name === n));
      if (bad.length) throw new Error(`unknown suite ${bad.join(', ')}`);
      only = SUITES.filter((s) => names.includes(s.name));
    } else if (a === '--json' || a.startsWith('--json=')) json = path.resolve(value());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return { only, quick, ...(json ? { json } : {}) };
}

function machine(): Record<string, unknown> {
  const cpu = os.cpus();
  let load = '';
  try {
    load = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    /* not Linux */
  }
  return {
    cpu: `${cpu[0]?.model ?? '?'} x ${cpu.length}`,
    memGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    kernel: os.release(),
    node: process.version,
    loadavgAtStart: load,
  };
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: needs root (network namespaces, taps, nft)\n');
    process.exit(2);
  }
  for (const f of ['dist/src/tapmanager/main.js', 'dist/src/vmwrapper/main.js', 'dist/bench/dhcp-serve.js']) {
    if (!fs.existsSync(path.join(ROOT, f))) {
      process.stderr.write(`bench: ${f} is missing: run "npm run build" first\n`);
      process.exit(2);
    }
  }
  installCleanup();
  const swept = sweepStale();
  if (swept.length) console.error(`bench: removed ${swept.length} leftovers of killed runs: ${swept.join(' ')}`);
  const started = new Date();
  const m = machine();
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
  console.log(`# tapwire bench, ${started.toISOString()}`);
  console.log(
    `machine: ${m.cpu}, ${m.memGiB} GiB, Linux ${m.kernel}, node ${m.node}; load at start ${m.loadavgAtStart}`,
  );
  console.log(`command: ${command}${args.quick ? ' (quick mode)' : ''}\n`);

  const out: Record<string, SuiteResult & { seconds: number; error?: string }> = {};
  for (const s of args.only) {
    console.error(`bench: running ${s.name} (${s.what})`);
    const t0 = Date.now();
    try {
      const r = await s.run(args.quick);
      out[s.name] = { ...r, seconds: (Date.now() - t0) / 1000 };
      if (r.skipped) console.log(`### ${s.name}: SKIPPED: ${r.skipped}\n`);
      for (const t of r.tables) console.log(`${renderTable(t)}\n`);
    } catch (e) {
      const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
      out[s.name] = { tables: [], targets: [], seconds: (Date.now() - t0) / 1000, error: msg };
      console.log(`### ${s.name}: FAILED\n\n${msg}\n`);
    }
    console.error(`bench: ${s.name} took ${out[s.name]!.seconds.toFixed(0)} s`);
  }

  const targets = Object.values(out).flatMap((r) => r.targets);
  const summary: Table = {
    title: 'Targets (issue 7 / issue 3), judged on this run',
    columns: ['suite', 'target', 'goal', 'measured', 'result', 'margin'],
    rows: targets.map((t) => [t.suite, t.what, t.goal, t.measured, t.met ? 'MET' : 'MISSED', t.by]),
    notes: ['margin: how far past (MET) or short of (MISSED) the goal, as a factor.'],
  };
  if (targets.length) console.log(renderTable(summary));
  const failed = Object.entries(out).filter(([, r]) => r.error);
  if (failed.length) console.log(`\nsuites that failed: ${failed.map(([n]) => n).join(', ')}`);

  if (args.json) {
    const doc = {
      date: started.toISOString(),
      finished: new Date().toISOString(),
      command,
      quick: args.quick,
      machine: m,
      commit: gitHead(),
      suites: out,
      targets,
    };
    fs.writeFileSync(args.json, `${JSON.stringify(doc, null, 2)}\n`);
    console.error(`bench: wrote ${args.json}`);
  }
  process.exitCode = failed.length ? 1 : 0;
}

function gitHead(): string | undefined {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
