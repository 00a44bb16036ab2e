#!/usr/bin/env -S node --min-semi-space-size=4 --max-semi-space-size=4 --no-memory-reducer
// tapmanager: the root daemon (one per node). Loads its records, repairs what a
// crash left, serves the control and fd sockets, and tells systemd when it is ready.
// The shebang caps V8's young generation (see deploy/systemd/tapmanager.service and deploy/bin/tapmanager) for any
// way the bin is started; `node main.js` without the flag works the same, with more RSS.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { warmUpDhcp, warmUpDhcpFromSocket } from '../dhcp/warmup';
import { finishDhcpWarmUp, warmUpDhcpServer } from '../dhcp/warmup-server';
import { parseFlags, usage, FlagSpec, type Flags } from '../util/flags';
import { createLogger } from '../util/log';
import { SdNotifier } from '../util/sd-notify';
import { DEFAULT_CONTROL_SOCKET, DEFAULT_FD_SOCKET, DEFAULT_STATE_DIR } from './protocol';
import { crashHookFromEnv } from './crash-points';
import { isWildcard, parseMetricsAddress, serveMetrics, TapwireMetrics } from './metrics';
import { SandboxManager } from './sandboxes';
import { DEFAULT_CONN_LIMITS } from './conn-limits';
import { DEFAULT_FRAME_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, TapmanagerServer } from './server';
import { lockStateDir } from './state-lock';
import { RecordStore } from './store';

export const FLAGS: FlagSpec[] = [
  { name: 'state-dir', help: 'sandbox records (one JSON file per sandbox)', default: DEFAULT_STATE_DIR },
  {
    name: 'fsync-records',
    help: 'fsync each record write (records describe netns state that dies with the boot: atomic rename is enough)',
    boolean: true,
  },
  { name: 'control-socket', help: 'control socket, root only (0600)', default: DEFAULT_CONTROL_SOCKET },
  { name: 'fd-socket', help: 'socket vmwrapper fetches tap fds from', default: DEFAULT_FD_SOCKET },
  { name: 'fd-allow-uid', help: 'uid allowed on the fd socket besides root (repeatable, comma lists)', repeat: true },
  { name: 'fd-allow-gid', help: 'gid allowed on the fd socket (repeatable, comma lists)', repeat: true },
  { name: 'nic-model', help: 'default guest NIC model', default: 'virtio-net-pci' },
  { name: 'lease-time', help: 'DHCP lease time in seconds', default: '3600' },
  {
    name: 'netns-dir',
    help: 'dir of pinned netns searched at start for orphan bridges/taps (ifalias tapwire:<scope>:<id>, no record)',
    default: '/run/netns,/run/tapwire/netns',
    repeat: true,
  },
  {
    name: 'max-conns-per-uid',
    help: 'connections one non-root uid may hold (both sockets); more are refused with EAGAIN',
    default: String(DEFAULT_CONN_LIMITS.perUid),
  },
  {
    name: 'max-conns',
    help: 'connections all non-root uids may hold together; more are refused with EAGAIN',
    default: String(DEFAULT_CONN_LIMITS.total),
  },
  {
    name: 'max-root-conns',
    help: "root's own connections (counted apart from --max-conns, so other peers cannot crowd root out)",
    default: String(DEFAULT_CONN_LIMITS.root),
  },
  {
    name: 'frame-timeout-ms',
    help: 'a request frame begun must be whole within this; else the connection is closed',
    default: String(DEFAULT_FRAME_TIMEOUT_MS),
  },
  {
    name: 'idle-timeout-ms',
    help: 'fd-socket connections with no request in flight are closed after this',
    default: String(DEFAULT_IDLE_TIMEOUT_MS),
  },
  {
    name: 'metrics-address',
    help: 'serve Prometheus metrics at http://HOST:PORT/metrics, e.g. 127.0.0.1:9464 (off without it)',
  },
  {
    name: 'metrics-sandbox-series',
    help: 'per-sandbox metric series for at most this many sandboxes (the node-wide ones count all)',
    default: '128',
  },
  { name: 'help', help: 'print this help', boolean: true },
];

function positive(flags: Flags, name: string): number {
  const v = Number(flags[name]);
  if (!Number.isInteger(v) || v < 1)
    throw new Error(`invalid --${name} ${JSON.stringify(flags[name])}: not a positive integer`);
  return v;
}

function ids(v: unknown, field: string): number[] {
  return ((v as string[] | undefined) ?? []).map((s) => {
    const n = /^\d+$/.test(s) ? Number(s) : lookupId(s, field);
    if (!Number.isInteger(n)) throw new Error(`invalid --${field} ${JSON.stringify(s)}`);
    return n;
  });
}

function lookupId(name: string, field: string): number {
  // names from /etc/passwd or /etc/group
  const file = field === 'fd-allow-uid' ? '/etc/passwd' : '/etc/group';
  const line = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .find((l: string) => l.split(':')[0] === name);
  if (!line)
    throw new Error(`invalid --${field} ${JSON.stringify(name)}: no such ${field.endsWith('uid') ? 'user' : 'group'}`);
  return Number(line.split(':')[2]);
}

async function main(): Promise<void> {
  const { flags } = parseFlags(process.argv.slice(2), FLAGS);
  if (flags.help) {
    process.stdout.write(usage('tapmanager', FLAGS));
    startStep = undefined;
    return;
  }
  const log = createLogger('tapmanager');
  const notify = new SdNotifier(process.env, (e) =>
    log.warn('systemd notification failed (NOTIFY_SOCKET)', { error: e.message }),
  );
  notifyStep = (step) => notify.status(`starting: ${step}`);
  const limits = {
    perUid: positive(flags, 'max-conns-per-uid'),
    total: positive(flags, 'max-conns'),
    root: positive(flags, 'max-root-conns'),
  };
  const frameTimeoutMs = positive(flags, 'frame-timeout-ms');
  const idleTimeoutMs = positive(flags, 'idle-timeout-ms');
  const metricsAddress =
    flags['metrics-address'] === undefined ? undefined : parseMetricsAddress(String(flags['metrics-address']));
  const metrics = new TapwireMetrics({ maxSandboxSeries: positive(flags, 'metrics-sandbox-series') });
  if (process.getuid?.() !== 0) throw new Error('tapmanager must run as root (netns, taps, bridges)');
  // The last line, for a bug: every peer-facing path handles its own failures, and a
  // rejection nobody awaited must not end a daemon that holds every pod's network.
  process.on('unhandledRejection', (e) => log.error('unhandled rejection (a bug; the daemon goes on)', { error: e }));
  const store = new RecordStore(String(flags['state-dir']), { fsync: flags['fsync-records'] === true });
  await store.init();
  setStartStep('locking the state dir');
  const stateLock = await lockStateDir(String(flags['state-dir'])); // one daemon per state dir
  const crashHook = crashHookFromEnv(); // tests only (crash-points.ts)
  const mgr = new SandboxManager({
    store,
    log,
    nicModel: String(flags['nic-model']),
    leaseTime: Number(flags['lease-time']),
    netnsDirs: (flags['netns-dir'] as string[]).flatMap((d) => d.split(',')).filter(Boolean),
    onProgress: (step, id) => metrics.stepReached(step, id),
    onRecoveryError: (step, e) => metrics.recoveryFailed(step, e),
    ...(crashHook ? { onStep: crashHook } : {}),
  });
  metrics.attach(mgr);
  // before any guest talks to us: the first exchanges after a (re)start are then as fast as later ones
  setStartStep('dhcp warm-up');
  const t0 = performance.now();
  warmUpDhcp();
  // an optimisation only: without loopback (lo down) it is skipped, not waited for
  await warmUpDhcpFromSocket(undefined, {
    onSkip: (why) => log.warn('dhcp warm-up over loopback skipped; the first DHCP exchanges may be slower', { why }),
  });
  await warmUpDhcpServer(undefined, {
    onSkip: (why) =>
      log.warn('dhcp warm-up through a loopback server skipped; the first DHCP exchanges may be slower', { why }),
  });
  log.debug('dhcp path warmed', { ms: Math.round((performance.now() - t0) * 10) / 10 });
  setStartStep('recovery of the records');
  const recoveryStart = performance.now();
  await mgr.recover();
  metrics.recovered((performance.now() - recoveryStart) / 1000);
  // the recovery's garbage collected now, and the DHCP path warmed again after it
  // (finishDhcpWarmUp says why), rather than beside the first guests' exchanges
  setStartStep('collecting the start-up garbage, warming the dhcp path again');
  await finishDhcpWarmUp({
    onSkip: (why) => log.warn('dhcp warm-up after the recovery skipped', { why }),
  });
  setStartStep('opening the sockets');
  const server = new TapmanagerServer(mgr, {
    controlSocket: String(flags['control-socket']),
    fdSocket: String(flags['fd-socket']),
    fdAllowUids: ids(flags['fd-allow-uid'], 'fd-allow-uid'),
    fdAllowGids: ids(flags['fd-allow-gid'], 'fd-allow-gid'),
    log,
    limits,
    frameTimeoutMs,
    idleTimeoutMs,
    metrics,
  });
  await server.start();
  let metricsServer: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  if (metricsAddress) {
    setStartStep('opening the metrics endpoint');
    if (isWildcard(metricsAddress))
      log.warn('metrics served on every address of the node', { metricsAddress: flags['metrics-address'] });
    metricsServer = await serveMetrics(metrics, metricsAddress, log).catch((e: Error) => {
      throw new Error(`cannot serve --metrics-address ${JSON.stringify(flags['metrics-address'])}: ${e.message}`);
    });
  }
  // before "ready" is said: a stop asked for the moment it is (systemctl, a test) must find
  // the handlers, or the signal's default action ends the daemon without a clean stop
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('stopping; the pod topologies stay, a restart picks them up', { signal: sig });
    notify.stopping(`stopping (${sig}); the pod topologies stay`);
    void Promise.all([server.close(), mgr.close(), metricsServer?.close()])
      .then(() => new Promise((r) => stateLock.close(r)))
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  startStep = undefined;
  log.info('ready', {
    pid: process.pid,
    host: os.hostname(),
    controlSocket: flags['control-socket'],
    fdSocket: flags['fd-socket'],
    ...(metricsServer ? { metrics: `${metricsAddress!.host}:${metricsServer.port}` } : {}),
    sandboxes: mgr.list().length,
  });
  notify.ready(servingStatus(mgr));
  // `systemctl status` follows the count; a datagram only when it changed
  setInterval(() => notify.status(servingStatus(mgr)), 5000).unref();
}

function servingStatus(mgr: SandboxManager): string {
  return `serving ${mgr.list().length} sandboxes`;
}

/** Tells systemd (STATUS=) which start-up step is under way. */
let notifyStep: (step: string) => void = () => undefined;

/** The start-up step under way; undefined once ready. */
let startStep: string | undefined = 'start';

function setStartStep(step: string): void {
  startStep = step;
  notifyStep(step);
}

// A start-up step that waits on something which can never happen (a callback that never
// comes) leaves the event loop empty: Node would end the process with status 0 before it
// was ready, saying nothing. Say which step it was and fail instead.
process.on('beforeExit', () => {
  if (startStep === undefined) return;
  process.stderr.write(`tapmanager: start-up stalled in ${startStep}: nothing left to wait for, never ready\n`);
  process.exit(1);
});

main().catch((e: unknown) => {
  process.stderr.write(`tapmanager: ${(e as Error).message}\n`);
  process.exit(1);
});
