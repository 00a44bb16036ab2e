#!/usr/bin/env node
// The tapwire demo (the README's main job). With containerd installed (and unless
// --standalone), the shape a kubelet uses (proxy.ts): a containerd of its own, tapwire-cri
// --backend in front of it, a VM pod by RuntimeClass handler whose container runs vmwrapper
// and QEMU. Otherwise (--standalone), in namespaces and directories it owns, it starts
// tapmanager and tapwire-cri with the bundled CNI config (bridge + host-local + portmap),
// runs a pod sandbox through the CRI socket, boots tapwire's guest through vmwrapper on the
// sandbox's tap. Both show the sandbox, its topology and the guest's lease, then stop and
// remove the sandbox and show that nothing is left. Whatever happens, everything it made is
// removed on the way out (Ctrl-C included).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mountState } from '../cri/netns';
import { repoRoot } from '../cri/proto';
import { runtimeClient, RuntimeClient } from './cri-client';
import { bootGuest, type GuestRun } from './guest';
import { Daemon, startDaemon } from './procs';
import { DemoPod, nothingLeftStep, tapctl, versionStep } from './cri-steps';
import { proxyDemo, type DemoContext } from './proxy';
import { Steps } from './steps';

const ROOT = repoRoot();
const DIST = path.join(ROOT, 'dist', 'src');
const CNI_BIN_DIRS = '/opt/cni/bin,/usr/lib/cni';

const undo: { what: string; fn: () => unknown }[] = [];

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function quiet(fn: () => unknown): void {
  try {
    fn();
  } catch {
    /* best effort on the way out */
  }
}

async function cleanup(): Promise<void> {
  for (const u of undo.splice(0).reverse()) {
    try {
      await u.fn();
    } catch (e) {
      process.stderr.write(`demo cleanup: ${u.what}: ${(e as Error).message}\n`);
    }
  }
}

function links(netns: string): string {
  return sh('ip', ['-n', netns, '-br', 'link'])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(/\s+/)[0]!.replace(/@.*/, ''))
    .join(', ');
}

/** What the proxy demo needs that may be missing (containerd from Debian's package; gcc for the pause image). */
function proxyMissing(): string[] {
  return ['containerd', 'containerd-shim-runc-v2', 'runc', 'ctr', 'gcc', 'unshare', 'nsenter'].filter((t) => {
    try {
      sh('sh', ['-c', `command -v ${t}`]);
      return false;
    } catch {
      return true;
    }
  });
}

const USAGE = `usage: demo [--standalone]
  (default) with containerd installed: tapwire-cri --backend in front of a containerd of the demo's own
  --standalone  tapwire-cri making the netns and calling CNI itself (also the default without containerd)
`;

/** The guest's run: how QEMU was started, its report lines and the lease it got. */
function showGuest(steps: Steps, run: GuestRun): void {
  steps.show(`ran as ${run.user}; the process was ${run.execedInto}`);
  for (const l of run.lines) steps.show(l);
  process.stdout.write('\n== the lease the guest reports ==\n');
  const lease = run.lease;
  const rows: [string, string | undefined][] = lease
    ? [
        ['nic', lease.nic],
        ['ip', `${lease.ip}/${lease.mask}`],
        ['router', lease.router.join(', ')],
        ['routes', lease.routes.join(', ')],
        ['dns', lease.dns.join(', ')],
        ['search', lease.search.join(', ')],
        ['domain', lease.domain],
        ['mtu', lease.mtu],
        ['hostname', lease.hostname],
        ['lease', lease.lease && `${lease.lease} s`],
        ['server', lease.server],
      ]
    : [['(none)', 'the guest reported no lease']];
  for (const [k, v] of rows) if (v) process.stdout.write(`   ${k.padEnd(9)} ${v}\n`);
  for (const p of run.problems) process.stdout.write(`   problem: ${p}\n`);
  process.stdout.write('\n');
}

function finish(steps: Steps, ok: boolean): void {
  steps.summary();
  process.stdout.write(`\n${ok ? 'DEMO OK' : 'DEMO FAILED: the guest did not finish with its lease and checks ok'}\n`);
  process.exitCode = ok ? 0 : 1;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.some((a) => a !== '--standalone')) {
    process.stderr.write(USAGE);
    process.exit(args.includes('--help') || args.includes('-h') ? 0 : 2);
  }
  if (process.getuid?.() !== 0) throw new Error('the demo must run as root (it makes namespaces and bridges)');
  const steps = new Steps();
  const tag = `twdemo-${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
  const work = fs.mkdtempSync(path.join('/run', `${tag}-`));
  undo.push({ what: `remove ${work}`, fn: () => fs.rmSync(work, { recursive: true, force: true }) });

  const c: DemoContext = {
    steps,
    work,
    root: ROOT,
    dist: DIST,
    undo: (what, fn) => undo.push({ what, fn }),
    sh,
    showGuest: (run) => showGuest(steps, run),
  };

  const missing = args.includes('--standalone') ? [] : proxyMissing();
  if (!args.includes('--standalone') && !missing.length) {
    process.stdout.write(
      '== tapwire demo: CRI -> tapwire-cri --backend -> containerd (netns, CNI) -> tapmanager -> ' +
        'VM container: vmwrapper -> QEMU guest ==\n',
    );
    process.stdout.write(`   (everything lives in ${work} and containerd's own namespaces; removed at the end)\n\n`);
    return finish(steps, await proxyDemo(c));
  }
  if (missing.length) {
    process.stdout.write(`(standalone mode: the demo with containerd needs ${missing.join(', ')}, not installed)\n`);
  }
  const nodeNs = `${tag}-node`;
  const sock = {
    control: path.join(work, 'tapmanager', 'control.sock'),
    fd: path.join(work, 'tapmanager', 'fd.sock'),
    cri: path.join(work, 'cri.sock'),
  };
  const netnsDir = path.join(work, 'netns');
  const ipamDir = path.join(work, 'ipam');
  fs.mkdirSync(path.dirname(sock.control));
  // vmwrapper runs unprivileged: it must reach the fd socket (0666) but nothing else here
  for (const d of [work, path.dirname(sock.control)]) fs.chmodSync(d, 0o711);

  process.stdout.write(`== tapwire demo: CRI pod sandbox -> CNI bridge -> tapmanager -> vmwrapper -> QEMU guest ==\n`);
  process.stdout.write(`   (everything lives in netns ${nodeNs} and ${work}; removed at the end)\n\n`);

  await steps.run(`make the demo's node netns ${nodeNs} (CNI's bridge goes there, not on this host)`, () => {
    sh('ip', ['netns', 'add', nodeNs]);
    undo.push({
      what: `delete netns ${nodeNs}`,
      fn: () => {
        for (const pid of sh('ip', ['netns', 'pids', nodeNs]).split(/\s+/).filter(Boolean)) {
          quiet(() => process.kill(Number(pid), 'SIGKILL'));
        }
        sh('ip', ['netns', 'del', nodeNs]);
      },
    });
    sh('ip', ['-n', nodeNs, 'link', 'set', 'lo', 'up']);
  });

  const daemons: Daemon[] = [];
  undo.push({ what: 'stop daemons', fn: () => Promise.all(daemons.map((d) => d.stop())) });
  await steps.run('start tapmanager (root daemon: control socket 0600, fd socket for vmwrapper)', async () => {
    const d = await startDaemon(
      'tapmanager',
      path.join(DIST, 'tapmanager', 'main.js'),
      [
        '--state-dir', path.join(work, 'tapmanager', 'state'),
        '--control-socket', sock.control,
        '--fd-socket', sock.fd,
        '--fd-allow-uid', 'nobody',
      ], // prettier-ignore
      sock.control,
      path.join(work, 'tapmanager.log'),
    );
    daemons.push(d);
  });

  await steps.run('start tapwire-cri with the bundled CNI config (deploy/cni/10-tapwire.conflist)', async () => {
    const conf = JSON.parse(fs.readFileSync(path.join(ROOT, 'deploy', 'cni', '10-tapwire.conflist'), 'utf8'));
    conf.plugins[0].ipam.dataDir = ipamDir;
    fs.mkdirSync(path.join(work, 'net.d'));
    fs.writeFileSync(path.join(work, 'net.d', '10-tapwire.conflist'), JSON.stringify(conf, null, 2));
    const d = await startDaemon(
      'tapwire-cri',
      path.join(DIST, 'cri', 'main.js'),
      [
        '--listen', sock.cri,
        '--state-dir', path.join(work, 'cri'),
        '--netns-dir', netnsDir,
        '--cni-conf-dir', path.join(work, 'net.d'),
        '--cni-bin-dir', CNI_BIN_DIRS,
        '--cni-host-netns', `/run/netns/${nodeNs}`,
        '--tapmanager-socket', sock.control,
      ], // prettier-ignore
      sock.cri,
      path.join(work, 'tapwire-cri.log'),
    );
    daemons.push(d);
    undo.push({
      what: `unmount ${netnsDir}`,
      fn: () => {
        for (const f of fs.existsSync(netnsDir) ? fs.readdirSync(netnsDir) : []) {
          quiet(() => sh('umount', ['--lazy', path.join(netnsDir, f)]));
        }
        for (let i = 0; i < 4 && mountState(netnsDir) !== 'none'; i++) sh('umount', ['--lazy', netnsDir]);
      },
    });
  });

  const client: RuntimeClient = runtimeClient(sock.cri);
  undo.push({ what: 'close the CRI client', fn: () => client.close() });
  const rt = client.rt;

  await versionStep(c, rt, 'CRI Version and Status');

  const podName = 'demo-vm';
  const pod = new DemoPod(c, rt);
  await steps.run('RunPodSandbox (netns, CNI ADD through bridge/host-local/portmap, tapmanager setup)', async () => {
    const res = await rt.RunPodSandbox!({
      config: {
        metadata: { name: podName, namespace: 'default', uid: randomBytes(8).toString('hex'), attempt: 0 },
        hostname: podName,
        labels: { app: 'tapwire-demo' },
        dnsConfig: { servers: ['10.250.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] },
        linux: { securityContext: { namespaceOptions: { network: 'POD' } } },
      },
    });
    pod.made(res.podSandboxId as string);
  });
  const sandboxId = pod.id;

  let netKey = '';
  await steps.run('PodSandboxStatus (verbose: the VM network key a runtime hands to vmwrapper)', async () => {
    const st = await rt.PodSandboxStatus!({ podSandboxId: sandboxId, verbose: true });
    netKey = st.info?.netKey ?? '';
    if (!netKey) throw new Error('PodSandboxStatus verbose has no netKey: tapmanager setup did not complete');
    const s = st.status;
    steps.show(`state ${s.state}  pod ${s.metadata.namespace}/${s.metadata.name}  ip ${s.network?.ip}`);
    steps.show(`TAPWIRE_NET_KEY=${netKey.replace(/:.*/, ':<token>')}`);
  });

  await steps.run(`tapctl describe ${sandboxId}`, () => steps.show(tapctl(c, sock.control, 'describe', sandboxId)));

  let leaseOk = false;
  await steps.run('boot the guest: vmwrapper fetches the tap fd over SCM_RIGHTS and execs QEMU (TCG)', async () => {
    const run = await bootGuest({
      shim: path.join(ROOT, 'deploy', 'libvirt', 'vmwrapper'),
      netKey,
      fdSocket: sock.fd,
      emulator: process.env.TAPWIRE_EMULATOR ?? '/usr/bin/qemu-system-x86_64',
      workDir: path.join(work, 'guest'),
      timeoutMs: 150_000,
    });
    showGuest(steps, run);
    leaseOk = run.ok;
  });

  await pod.removeStep('StopPodSandbox and RemovePodSandbox (tapmanager teardown, CNI DEL, netns removed)');
  await nothingLeftStep(c, rt, {
    control: sock.control,
    netnsDir,
    more: () => [
      {
        what: 'host-local leases',
        count: fs.existsSync(ipamDir)
          ? fs.readdirSync(path.join(ipamDir, 'tapwire')).filter((f) => /^\d/.test(f)).length
          : 0,
      },
    ],
    note: () => `links in the node netns: ${links(nodeNs)} (the CNI bridge stays, as with any bridge CNI)`,
  });

  finish(steps, leaseOk);
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${sig}: cleaning up\n`);
    void cleanup().then(() => process.exit(130));
  });
}

main()
  .catch((e: unknown) => {
    process.stderr.write(`\ndemo failed: ${(e as Error).message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
