// The metrics endpoint scraped by the real Prometheus (Debian's): a daemon (dist) with
// --metrics-address on loopback serves two sandboxes, each with a "guest" netns behind its
// tap (test/fixtures/tap-relay.py fetches the tap fd, busybox udhcpc gets the lease). A
// rogue DHCP client on the pod network sends DISCOVERs at one sandbox's veth, which the
// fence drops. Prometheus's HTTP API must then answer for the exchange's counters, the
// fence drop, the setups, fd hand-outs and refusals; `promtool check metrics` passes the
// endpoint's text; `tapctl stats` and `tapctl describe` show the same counts.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { fetchFds } from '../../src/vmwrapper/fetch';
import { readEvents, waitFor, writeRecorder } from '../fixtures/dhcp-net';
import { killAll, spawnIn, type Proc } from '../fixtures/dhcp-procs';
import { killDaemons, startDaemon, stopDaemon, type Daemon } from '../helpers/daemon';
import { killAndWait } from '../helpers/kill';
import { createNetns, removeAllNetns, type TestNetns } from '../helpers/netns';
import { makePod, type Pod } from '../helpers/pod';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const ROOT = path.resolve(__dirname, '../..');
const RELAY = path.join(ROOT, 'test/fixtures/tap-relay.py');
const TAPCTL = path.join(ROOT, 'dist/src/tapmanager/tapctl.js');

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describePrivileged('metrics scraped by Prometheus', () => {
  const noTools = requireTools('prometheus', 'promtool', 'busybox', 'python3');
  let dir: string;
  const procs = new Set<ChildProcess>();
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-prom-'));
  });
  afterEach(async () => {
    await killAll();
    await killAndWait(procs);
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A guest behind the sandbox's tap: relay + busybox udhcpc; resolves once it is bound. */
  async function guestFor(d: Daemon, p: Pod, netKey: string, label: string): Promise<TestNetns> {
    const guest = createNetns(`g${label}`);
    guest.ip('link', 'add', 'geth0', 'address', p.mac, 'type', 'veth', 'peer', 'name', 'grelay');
    guest.ip('link', 'set', 'grelay', 'up');
    guest.ip('link', 'set', 'geth0', 'up');
    const relay: Proc = spawnIn(guest, 'python3', [RELAY, d.fdSocket, netKey, guest.path, 'grelay']);
    await waitFor('relay ready', () => relay.output().includes('RELAY-READY') || relay.child.exitCode !== null);
    if (!relay.output().includes('RELAY-READY')) throw new Error(`tap-relay failed: ${relay.output()}`);
    const evDir = path.join(dir, `udhcpc-${label}`);
    fs.mkdirSync(evDir);
    const script = writeRecorder(evDir, 'udhcpc');
    spawnIn(guest, 'busybox', ['udhcpc', '-f', '-i', 'geth0', '-s', script, '-t', '20', '-T', '1']);
    await waitFor(`udhcpc ${label} bound`, () => readEvents(evDir).find((e) => e.name === 'bound' && e.env.interface));
    return guest;
  }

  it('Prometheus scrapes the DHCP exchange of two sandboxes, a fence drop, setups and fd hand-outs', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const d = await startDaemon(dir, { args: ['--metrics-address', '127.0.0.1:0'] });
    const ready = d.logs().find((l) => l.msg === 'ready')!;
    const target = String(ready.metrics);
    expect(target).toMatch(/^127\.0\.0\.1:\d+$/);

    const pods = [makePod(), makePod()];
    const ids = ['sb-prom-a', 'sb-prom-b'];
    const keys: string[] = [];
    for (const [i, p] of pods.entries()) {
      const r = await d.client.setup({ sandboxId: ids[i]!, netnsPath: p.pod.path, cniResult: p.cniResult });
      keys.push(r.netKey);
    }
    // a setup that fails validation: counted by step and errno
    await expect(
      d.client.setup({ sandboxId: 'sb-prom-bad', netnsPath: pods[0]!.pod.path, cniResult: { cniVersion: 'x' } }),
    ).rejects.toMatchObject({ code: 'EINVAL' });
    // a wrong network key on the fd socket: a refusal
    expect(() => fetchFds(d.fdSocket, `${ids[0]}:wrong-token`)).toThrow(expect.objectContaining({ code: 'EACCES' }));
    for (const [i, p] of pods.entries()) await guestFor(d, p, keys[i]!, String(i));

    // a rogue DHCP client on the pod network of sandbox a: its DISCOVERs reach the pod's
    // veth from the node side, where the fence drops them
    const rogue = spawnIn(pods[0]!.node, 'busybox', [
      'udhcpc',
      '-i',
      pods[0]!.hostVeth,
      '-n',
      '-q',
      '-t',
      '2',
      '-T',
      '1',
      '-s',
      '/bin/true',
    ]);
    await rogue.exited;

    // the endpoint's text passes promtool's checks (format and naming lint)
    const text = await (await fetch(`http://${target}/metrics`)).text();
    execFileSync('promtool', ['check', 'metrics'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] });
    expect(text).toContain('process_resident_memory_bytes');

    // the real Prometheus, scraping every second
    const promPort = await freePort();
    const config = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(
      config,
      `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: tapwire\n    static_configs:\n      - targets: ['${target}']\n`,
    );
    let promOut = '';
    const prom = spawn(
      'prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    procs.add(prom);
    prom.stderr!.on('data', (b: Buffer) => (promOut += b.toString()));
    prom.on('exit', () => procs.delete(prom));
    const query = async (q: string): Promise<number | undefined> => {
      const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`).catch(
        () => undefined,
      );
      if (!res?.ok) return undefined;
      const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
      return body.data.result[0] ? Number(body.data.result[0].value[1]) : undefined;
    };
    /** Waits until Prometheus has a value for q that passes ok. */
    const until = async (q: string, ok: (v: number) => boolean): Promise<number> => {
      const end = Date.now() + 45_000;
      for (;;) {
        const v = await query(q);
        if (v !== undefined && ok(v)) return v;
        if (Date.now() > end) throw new Error(`Prometheus: ${q} = ${String(v)}\n${promOut.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    await until('up{job="tapwire"}', (v) => v === 1);
    await until('tapwire_sandboxes{state="ready"}', (v) => v === 2);
    // each guest: DISCOVER, OFFER, REQUEST (selecting), ACK
    await until('tapwire_dhcp_received_total{type="discover"}', (v) => v >= 2);
    await until('tapwire_dhcp_received_total{type="request_selecting"}', (v) => v >= 2);
    await until('tapwire_dhcp_replies_total{type="offer"}', (v) => v >= 2);
    await until('tapwire_dhcp_replies_total{type="ack"}', (v) => v >= 2);
    for (const id of ids) await until(`tapwire_sandbox_dhcp_messages_total{sandbox="${id}",type="ack"}`, (v) => v >= 1);
    // the rogue frames: dropped by sandbox a's fence, nothing by b's
    // (the DHCP rules: the node-side veths' own router solicitations are dropped too, by the router rules)
    const drops = await until(
      'sum(tapwire_fence_dropped_packets_total{rule=~"in_.*",rule!~".*6_(router|redirect)"})',
      (v) => v >= 1,
    );
    await until(
      `tapwire_sandbox_fence_dropped_packets_total{sandbox="${ids[0]}",reason="dhcp_from_pod"}`,
      (v) => v === drops,
    );
    await until(
      `tapwire_sandbox_fence_dropped_packets_total{sandbox="${ids[1]}",reason="dhcp_from_pod"}`,
      (v) => v === 0,
    );
    // and the rogue DISCOVERs never reached the sandbox's DHCP server
    await until('tapwire_dhcp_ignored_total{reason="unknown_mac"}', (v) => v === 0);
    await until('tapwire_operation_duration_seconds_count{op="setup",outcome="ok"}', (v) => v === 2);
    await until('tapwire_operation_errors_total{op="setup",step="plan",errno="EINVAL"}', (v) => v === 1);
    await until('tapwire_fd_handouts_total', (v) => v === 2);
    await until('tapwire_fd_refusals_total{reason="bad_key"}', (v) => v === 1);
    await until('tapwire_recovery_duration_seconds_count', (v) => v === 1);
    await until('process_resident_memory_bytes{job="tapwire"}', (v) => v > 0);

    // tapctl shows the same counters: node-wide (stats) and for one sandbox (describe)
    const tapctl = (...args: string[]) =>
      execFileSync(process.execPath, [TAPCTL, '--socket', d.controlSocket, ...args], { encoding: 'utf8' });
    const stats = JSON.parse(tapctl('stats', '--json')) as {
      metrics: { name: string; values: { value: number; labels: Record<string, string> }[] }[];
    };
    const stat = (name: string, labels: Record<string, string> = {}) =>
      stats.metrics
        .find((m) => m.name === name)
        ?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
    expect(stat('tapwire_dhcp_replies_total', { type: 'ack' })).toBe(
      await query('tapwire_dhcp_replies_total{type="ack"}'),
    );
    expect(stat('tapwire_fence_dropped_packets_total', { rule: 'in_udp_dport' })).toBeGreaterThanOrEqual(1);
    expect(stat('tapwire_fd_refusals_total', { reason: 'bad_key' })).toBe(1);
    expect(tapctl('stats')).toMatch(/^tapwire_dhcp_replies_total\{type="ack"\} \d+$/m);
    const described = tapctl('describe', ids[0]!);
    expect(described).toMatch(/DHCP: received \d+, sent \d+ offer \d+ ack 0 nak, ignored 0/);
    expect(described).toMatch(/nic0_in_udp_dport\s+\d+ pkts/);
    const status = JSON.parse(tapctl('describe', ids[0]!, '--json')) as {
      dhcp: { ack: number }[];
      fence: { name: string; packets: number }[];
    };
    expect(status.dhcp[0]!.ack).toBe(
      await query(`tapwire_sandbox_dhcp_messages_total{sandbox="${ids[0]}",type="ack"}`),
    );

    await killAll();
    for (const id of ids) expect(await d.client.teardown(id)).toEqual({ errors: [] });
    // gone sandboxes keep their counts in the node-wide totals
    const after = await (await fetch(`http://${target}/metrics`)).text();
    expect(after).toMatch(/^tapwire_sandboxes\{state="ready"\} 0$/m);
    expect(after).not.toContain(`sandbox="${ids[0]}"`);
    const acks = Number(/^tapwire_dhcp_replies_total\{type="ack"\} (\d+)$/m.exec(after)![1]);
    expect(acks).toBeGreaterThanOrEqual(2);
    await stopDaemon(d);
  });
});
