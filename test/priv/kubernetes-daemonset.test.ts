// The DaemonSet's containers started as the kubelet would start them, without a cluster:
// each container's environment rendered from the ConfigMap (envFrom) and its env entries
// (status.hostIP as 127.0.0.1, $(VAR) references expanded as Kubernetes does), and its
// command run with the image's /usr/bin (deploy/bin, the library beside it). The node
// paths the hostPath volumes mount are moved under a temp dir, and the metrics port to
// one the kernel picks (another daemon of a test may hold 9464). Both daemons must come
// up with those flags, and tapmanager serve a sandbox and its metrics.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { TapmanagerClient } from '../../src/tapmanager/client';
import { killAndWait } from '../helpers/kill';
import { readManifests } from '../helpers/kube-manifests';
import { removeAllNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';

const ROOT = path.resolve(__dirname, '../..');

interface Container {
  name: string;
  command: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  envFrom?: { configMapRef: { name: string } }[];
}

/** $(VAR) as Kubernetes expands it in env values: defined names only, $$ for a literal $. */
function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string | undefined) =>
    all === '$$' ? '$' : name !== undefined && name in env ? env[name]! : all,
  );
}

describePrivileged('the DaemonSet started as the kubelet would', () => {
  let dir: string;
  const children = new Set<ChildProcess>();
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-kube-'));
  });
  afterEach(async () => {
    await killAndWait(children);
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('tapmanager and tapwire-cri run with the ConfigMap flags; tapmanager sets up a pod and serves metrics', async () => {
    const manifests = readManifests().map((m) => m.obj);
    const cm = manifests.find((o) => o.kind === 'ConfigMap') as {
      data: Record<string, string>;
    } & (typeof manifests)[0];
    const ds = manifests.find((o) => o.kind === 'DaemonSet') as unknown as {
      spec: { template: { spec: { containers: Container[] } } };
    };
    // the image's layout: /usr/bin wrappers, /usr/lib/tapwire
    const image = path.join(dir, 'image');
    fs.mkdirSync(path.join(image, 'usr/bin'), { recursive: true });
    fs.mkdirSync(path.join(image, 'usr/lib'), { recursive: true });
    for (const f of fs.readdirSync(path.join(ROOT, 'deploy/bin')))
      fs.copyFileSync(path.join(ROOT, 'deploy/bin', f), path.join(image, 'usr/bin', f));
    fs.symlinkSync(ROOT, path.join(image, 'usr/lib/tapwire'));
    const node = (p: string) =>
      p
        .replaceAll('/var/lib/tapwire', path.join(dir, 'var-lib-tapwire'))
        .replaceAll('/run/tapwire', path.join(dir, 'run-tapwire'))
        .replaceAll('/run/netns', path.join(dir, 'run-netns'))
        .replaceAll('/run/containerd', path.join(dir, 'run-containerd'));

    const logs: Record<string, string> = {};
    const started = ds.spec.template.spec.containers.map((c) => {
      const env: Record<string, string> = {
        PATH: `${path.join(image, 'usr/bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      };
      for (const from of c.envFrom ?? []) {
        expect(from.configMapRef.name).toBe(cm.metadata.name);
        for (const [k, v] of Object.entries(cm.data)) env[k] = node(v);
      }
      for (const e of c.env ?? []) {
        if (e.valueFrom?.fieldRef) {
          expect(e.valueFrom.fieldRef.fieldPath).toBe('status.hostIP');
          env[e.name] = '127.0.0.1';
        } else env[e.name] = node(expand(e.value ?? '', env));
      }
      if (env.METRICS_ADDRESS) {
        expect(env.METRICS_ADDRESS).toBe('127.0.0.1:9464');
        env.METRICS_ADDRESS = '127.0.0.1:0';
      }
      const child = spawn(c.command[0]!, c.command.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
      children.add(child);
      logs[c.name] = '';
      child.stderr!.on('data', (d: Buffer) => (logs[c.name] += d.toString()));
      child.on('exit', () => children.delete(child));
      return { c, env, child };
    });
    expect(started.map((s) => s.c.name).sort()).toEqual(['tapmanager', 'tapwire-cri']);
    const waitLog = async (name: string, re: RegExp) => {
      const end = Date.now() + 20_000;
      while (!re.test(logs[name]!)) {
        if (Date.now() > end) throw new Error(`${name}: no ${re} in:\n${logs[name]}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await waitLog('tapmanager', /"msg":"ready"/);
    await waitLog('tapwire-cri', /"msg":"(listening|serving)[^"]*"/);
    const ready = JSON.parse(logs.tapmanager!.split('\n').find((l) => l.includes('"msg":"ready"'))!) as {
      metrics: string;
      controlSocket: string;
    };
    expect(ready.controlSocket).toBe(path.join(dir, 'run-tapwire', 'control.sock'));
    expect(fs.existsSync(path.join(dir, 'run-tapwire', 'cri.sock'))).toBe(true);

    const p = makePod();
    const client = new TapmanagerClient(ready.controlSocket, 30_000);
    try {
      await client.setup({ sandboxId: 'sb-kube', netnsPath: p.pod.path, cniResult: p.cniResult });
      const text = await (await fetch(`http://${ready.metrics}/metrics`)).text();
      expect(text).toMatch(/^tapwire_sandboxes\{state="ready"\} 1$/m);
      expect((await client.teardown('sb-kube')).errors).toEqual([]);
    } finally {
      client.close();
    }
  });
});
