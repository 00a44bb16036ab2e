#!/usr/bin/env node
// tapwire-cri: the CRI RuntimeService (pod sandboxes) for VM pods, on a Unix socket.
// Flags are documented by --help. Trace lines: TAPWIRE_DEBUG=cri (or cri.cni, or *).
import { DEFAULT_CONF_DIR } from '../cni/config';
import { DEFAULT_BIN_DIRS } from '../cni/exec';
import { TapmanagerClient } from '../tapmanager/client';
import { DEFAULT_CONTROL_SOCKET } from '../tapmanager/protocol';
import { parseFlags, usage, FlagSpec } from '../util/flags';
import { createLogger } from '../util/log';
import { CriServer, DEFAULT_LISTEN } from './server';
import { DEFAULT_NETNS_DIR, DEFAULT_STATE_DIR, SandboxService } from './sandboxes';

const FLAGS: FlagSpec[] = [
  { name: 'listen', help: 'Unix socket to serve the CRI on', default: DEFAULT_LISTEN },
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
  const tapmanager = new TapmanagerClient(String(flags['tapmanager-socket']));
  const sandboxes = new SandboxService({
    cniConfDir: String(flags['cni-conf-dir']),
    cniBinDirs: flags['cni-bin-dir'] as string[],
    stateDir: String(flags['state-dir']),
    netnsDir: String(flags['netns-dir']),
    tapmanager,
    ...(flags['cni-host-netns'] ? { cniHostNetns: String(flags['cni-host-netns']) } : {}),
    logger: log,
  });
  await sandboxes.start();
  const net = sandboxes.networkReady();
  if (!net.ready) log.warn('network not ready', { reason: net.reason, message: net.message });
  const server = new CriServer({ sandboxes, logger: log });
  // before "listening" is said: a stop asked for the moment it is must find the handlers
  const stop = (sig: string): void => {
    log.info('shutting down', { signal: sig });
    void server.close().then(() => {
      tapmanager.close();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await server.listen(String(flags.listen));
}

main().catch((e: unknown) => {
  process.stderr.write(`tapwire-cri: ${(e as Error).message}\n`);
  process.exit(1);
});
