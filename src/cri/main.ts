#!/usr/bin/env node
// tapwire-cri: the CRI on a Unix socket. With --backend, a proxy in front of a CRI runtime
// (containerd): the whole RuntimeService and ImageService, every call forwarded, VM pods
// (RuntimeClass handler or annotation) set up with tapmanager. Without it, standalone: the
// pod-sandbox calls for VM pods, making netns and calling CNI itself.
// Flags are documented by --help. Trace lines: TAPWIRE_DEBUG=cri (or cri.cni, or *).
import { DEFAULT_CONF_DIR } from '../cni/config';
import { DEFAULT_BIN_DIRS } from '../cni/exec';
import { CniRunner } from '../cni/network';
import { TapmanagerClient } from '../tapmanager/client';
import * as path from 'node:path';
import { DEFAULT_CONTROL_SOCKET, DEFAULT_FD_SOCKET } from '../tapmanager/protocol';
import { parseFlags, usage, FlagSpec, type Flags } from '../util/flags';
import { createLogger, type Logger } from '../util/log';
import { SdNotifier } from '../util/sd-notify';
import { kernelPrefixes } from './proxy/kernel-prefixes';
import { NetnsPins } from './proxy/pin-netns';
import { ProxyServer } from './proxy/server';
import { DEFAULT_VM_SELECTOR } from './proxy/vm-requests';
import { VmPodStore } from './proxy/vm-store';
import { CriServer, DEFAULT_LISTEN } from './server';
import { DEFAULT_NETNS_DIR, DEFAULT_STATE_DIR, SandboxService } from './sandboxes';

const FLAGS: FlagSpec[] = [
  { name: 'listen', help: 'Unix socket to serve the CRI on', default: DEFAULT_LISTEN },
  {
    name: 'backend',
    help: 'proxy mode: the CRI runtime to forward to, e.g. unix:///run/containerd/containerd.sock',
  },
  {
    name: 'vm-runtime-handler',
    help: 'proxy mode: the RuntimeClass handler of VM pods',
    default: DEFAULT_VM_SELECTOR.handler,
  },
  {
    name: 'vm-annotation',
    help: 'proxy mode: an annotation that makes a pod a VM pod with the value "true" (empty: none)',
    default: DEFAULT_VM_SELECTOR.annotation,
  },
  {
    name: 'backend-runtime-handler',
    help: "proxy mode: the backend's handler VM pods run with (empty: its default)",
    default: DEFAULT_VM_SELECTOR.backendHandler,
  },
  {
    name: 'fd-socket',
    help: "proxy mode: tapmanager's fd socket, mounted (its directory, which must hold nothing else) into VM containers",
    default: DEFAULT_FD_SOCKET,
  },
  {
    name: 'reconcile-interval',
    help: 'proxy mode: seconds between reconciliations of VM pods with the backend and tapmanager (0: at start only)',
    default: '60',
  },
  {
    name: 'stop-teardown-attempts',
    help: 'proxy mode: StopPodSandbox calls a failing tapmanager teardown fails before the stop goes ahead anyway',
    default: '5',
  },
  {
    name: 'stop-teardown-grace',
    help: '... and seconds since its first failure',
    default: '120',
  },
  { name: 'state-dir', help: 'sandbox records and the CNI result cache', default: DEFAULT_STATE_DIR },
  { name: 'netns-dir', help: 'where sandbox network namespaces are pinned', default: DEFAULT_NETNS_DIR },
  {
    name: 'cni-conf-dir',
    help: 'CNI network configs (first valid by name is the pod network)',
    default: DEFAULT_CONF_DIR,
  },
  {
    name: 'cni-bin-dir',
    help: 'CNI plugin search path; repeat or comma-separate (Debian: /usr/lib/cni)',
    default: DEFAULT_BIN_DIRS.join(','),
    repeat: true,
  },
  {
    name: 'cni-host-netns',
    help: 'run CNI plugins inside this netns (a path) instead of our own, so the node side lands there (demo, tests)',
  },
  {
    name: 'network-attachments-dir',
    help: "NetworkAttachmentDefinitions for the network spec's multus networks: DIR/<namespace>/<name>.json|.yaml|.yml",
  },
  { name: 'tapmanager-socket', help: "tapmanager's control socket", default: DEFAULT_CONTROL_SOCKET },
  { name: 'help', help: 'print this help', boolean: true },
];

async function main(): Promise<void> {
  const log = createLogger('cri');
  let flags;
  try {
    flags = parseFlags(process.argv.slice(2), FLAGS).flags;
  } catch (e) {
    process.stderr.write(`tapwire-cri: ${(e as Error).message}\n${usage('tapwire-cri', FLAGS)}`);
    process.exit(2);
  }
  if (flags.help) {
    process.stdout.write(usage('tapwire-cri', FLAGS));
    return;
  }
  if (flags.backend !== undefined) return proxy(flags, log);
  const tapmanager = new TapmanagerClient(String(flags['tapmanager-socket']));
  const sandboxes = new SandboxService({
    cniConfDir: String(flags['cni-conf-dir']),
    cniBinDirs: flags['cni-bin-dir'] as string[],
    stateDir: String(flags['state-dir']),
    netnsDir: String(flags['netns-dir']),
    tapmanager,
    ...(flags['cni-host-netns'] ? { cniHostNetns: String(flags['cni-host-netns']) } : {}),
    ...(flags['network-attachments-dir'] ? { networkAttachmentsDir: String(flags['network-attachments-dir']) } : {}),
    logger: log,
  });
  await sandboxes.start();
  const net = sandboxes.networkReady();
  if (!net.ready) log.warn('network not ready', { reason: net.reason, message: net.message });
  const server = new CriServer({ sandboxes, logger: log });
  stopOnSignals(log, () => server.close(), tapmanager);
  await server.listen(String(flags.listen));
  notifier(log).ready(`serving the CRI on ${String(flags.listen)} (standalone)`);
}

/** systemd's notify socket (Type=notify): one per process, a no-op without NOTIFY_SOCKET. */
let sd: SdNotifier | undefined;
function notifier(log: Logger): SdNotifier {
  sd ??= new SdNotifier(process.env, (e) => log.warn('systemd notification failed', { error: e.message }));
  return sd;
}

/**
 * SIGTERM/SIGINT close the server and the tapmanager connection, then exit 0. Installed
 * before "listening" is said: a stop asked for the moment it is must find the handlers.
 */
function stopOnSignals(log: Logger, close: () => Promise<void>, tapmanager: TapmanagerClient): void {
  const stop = (sig: string): void => {
    log.info('shutting down', { signal: sig });
    notifier(log).stopping(`stopping (${sig})`);
    void close().then(() => {
      tapmanager.close();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** A flag that must be a whole number of at most max. */
function countFlag(flags: Flags, name: string, max = 1e9): number {
  const raw = String(flags[name]);
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > max)
    throw new Error(`--${name}: ${JSON.stringify(raw)} is not a whole number up to ${max}`);
  return n;
}

async function proxy(flags: Flags, log: Logger): Promise<void> {
  const tapmanager = new TapmanagerClient(String(flags['tapmanager-socket']));
  let server: ProxyServer;
  try {
    server = new ProxyServer({
      backend: String(flags.backend),
      vm: {
        tapmanager,
        selector: {
          handler: String(flags['vm-runtime-handler']),
          annotation: String(flags['vm-annotation']),
          backendHandler: String(flags['backend-runtime-handler']),
        },
        fdSocket: String(flags['fd-socket']),
        pins: new NetnsPins(String(flags['netns-dir'])),
        store: new VmPodStore(path.join(String(flags['state-dir']), 'vm-pods')),
        prefixes: kernelPrefixes,
        cni: new CniRunner({
          binDirs: flags['cni-bin-dir'] as string[],
          cacheDir: path.join(String(flags['state-dir']), 'cni-cache'),
          ...(flags['cni-host-netns'] ? { hostNetns: String(flags['cni-host-netns']) } : {}),
          logger: log.child('cni'),
        }),
        cniConfDir: String(flags['cni-conf-dir']),
        ...(flags['network-attachments-dir']
          ? { networkAttachmentsDir: String(flags['network-attachments-dir']) }
          : {}),
        reconcileMs: countFlag(flags, 'reconcile-interval', 86_400) * 1000,
        stopTeardownAttempts: countFlag(flags, 'stop-teardown-attempts'),
        stopTeardownGraceMs: countFlag(flags, 'stop-teardown-grace', 86_400) * 1000,
      },
      logger: log,
    });
  } catch (e) {
    process.stderr.write(`tapwire-cri: ${(e as Error).message}\n`);
    process.exit(2);
  }
  stopOnSignals(log, () => server.close(), tapmanager);
  await server.listen(String(flags.listen));
  notifier(log).ready(`proxying the CRI on ${String(flags.listen)} to ${String(flags.backend)}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`tapwire-cri: ${(e as Error).message}\n`);
  process.exit(1);
});
