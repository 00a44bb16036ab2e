// kill -9 of the real daemon (dist) at every step of a setup and of a teardown, then a
// restart on the same state dir: an interrupted setup is rolled back to the exact
// snapshot (or, once recorded ready, kept), an interrupted teardown is finished, a
// retried setup works, and the final teardown restores `ip -d link/addr/route` exactly.
// A restart killed during its own rollback leaves the record for the next one.
// The crash points are TAPWIRE_TEST_CRASH_AFTER (src/tapmanager/crash-points.ts).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { SetupRequest } from '../../src/tapmanager/protocol';
import { Daemon, killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { ipDump, settledDump } from '../helpers/ip-dump';
import { removeAllNetns, type TestNetns } from '../helpers/netns';
import { makePod, type Pod, type PodOptions } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';

const SB = 'sb-crash';

describePrivileged('tapmanager kill -9 + restart at each step', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-crash-'));
  });
  afterEach(async () => {
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const crashEnv = (point: string) => ({ env: { TAPWIRE_TEST_CRASH_AFTER: point } });
  const request = (p: Pod): Omit<SetupRequest, 'op'> => ({
    sandboxId: SB,
    netnsPath: p.pod.path,
    cniResult: p.cniResult,
  });
  const records = (): string[] => fs.readdirSync(path.join(dir, 'state', 'sandboxes'));

  /** Nothing of tapwire is left in the pod: no DHCP listener, no fence table, no br/tap. */
  function assertClean(pod: TestNetns): void {
    expect(pod.exec('ss', ['-H', '-lun', 'sport = :67'])).toBe('');
    expect(pod.exec('nft', ['list', 'tables'])).not.toContain('tapwire');
    expect(pod.ip('-o', 'link', 'show')).not.toMatch(/: (br|tap)\d+[:@]/);
  }

  /** The daemon dies of SIGKILL while the setup is in flight: the client sees the socket close. */
  async function setupDies(d: Daemon, p: Pod): Promise<void> {
    await expect(d.client.setup(request(p))).rejects.toMatchObject({
      code: expect.stringMatching(/^(EPIPE|ECONNRESET)$/),
    });
    expect(await d.exited).toBe('SIGKILL');
  }

  /** After the restart: a setup interrupted before "ready" is gone and the pod is exactly as before. */
  async function rolledBack(r: Daemon, p: Pod, before: string, recorded: boolean): Promise<void> {
    expect(await r.client.list()).toEqual([]);
    expect(records()).toEqual([]);
    expect(ipDump(p.pod)).toBe(before);
    assertClean(p.pod);
    if (recorded) {
      expect(r.logs()).toContainEqual(
        expect.objectContaining({ msg: 'interrupted setup: rolling back', sandboxId: SB, level: 'warn' }),
      );
    }
  }

  /** A retried setup works on the restarted daemon, and its teardown restores the pod exactly. */
  async function retryAndTeardown(r: Daemon, p: Pod, before: string): Promise<void> {
    const res = await r.client.setup(request(p));
    expect(res.nics[0]).toMatchObject({ mac: p.mac, ip: p.ip, tap: 'tap0' });
    expect(await r.client.teardown(SB)).toEqual({ errors: [] });
    expect(ipDump(p.pod)).toBe(before);
    assertClean(p.pod);
    expect(records()).toEqual([]);
  }

  for (const point of ['setup.planned', 'setup.recorded', 'setup.fenced', 'setup.dhcp']) {
    it(`setup killed after ${point}: the restart rolls it back to the snapshot`, async () => {
      const p = makePod({ ipv6: true });
      const before = await settledDump(p.pod);
      await setupDies(await startDaemon(dir, crashEnv(point)), p);
      if (point !== 'setup.planned') {
        const saved = fs.readFileSync(path.join(dir, 'state', 'sandboxes', `${SB}.json`), 'utf8');
        expect(JSON.parse(saved)).toMatchObject({ sandboxId: SB, state: 'setting-up' });
      }
      const r = await startDaemon(dir);
      await rolledBack(r, p, before, point !== 'setup.planned');
      await retryAndTeardown(r, p, before);
    });
  }

  it('setup killed after setup.ready: the restart keeps it, serves it and tears it down exactly', async () => {
    const p = makePod({ ipv6: true });
    const before = await settledDump(p.pod);
    await setupDies(await startDaemon(dir, crashEnv('setup.ready')), p);
    // the record says by itself that the sandbox is ready (its state rewritten in place: store.ts)
    const saved = fs.readFileSync(path.join(dir, 'state', 'sandboxes', `${SB}.json`), 'utf8');
    expect(JSON.parse(saved)).toMatchObject({ sandboxId: SB, state: 'ready' });
    const r = await startDaemon(dir);
    expect(await r.client.list()).toEqual([expect.objectContaining({ sandboxId: SB, state: 'ready' })]);
    expect(r.logs()).toContainEqual(expect.objectContaining({ msg: 'sandbox recovered', sandboxId: SB }));
    expect(await r.client.status(SB)).toMatchObject({ state: 'ready', drift: [] });
    expect(p.pod.exec('ss', ['-H', '-lun', 'sport = :67'])).toContain('%br0:67');
    // the retried setup (its first reply was lost) answers from the record
    const res = await r.client.setup(request(p));
    const rec = JSON.parse(fs.readFileSync(path.join(dir, 'state', 'sandboxes', `${SB}.json`), 'utf8')) as {
      token: string;
    };
    expect(res.netKey).toBe(`${SB}:${rec.token}`);
    expect(await r.client.teardown(SB)).toEqual({ errors: [] });
    expect(ipDump(p.pod)).toBe(before);
    assertClean(p.pod);
  });

  /** Crashes at setup.nl1, nl2, ... until a setup completes; returns how many points were crossed. */
  async function everyNetlinkStep(o: PodOptions): Promise<number> {
    for (let n = 1; n < 64; n++) {
      removeAllNetns();
      const p = makePod(o);
      const before = await settledDump(p.pod);
      const d = await startDaemon(dir, crashEnv(`setup.nl${n}`));
      const outcome = await d.client.setup(request(p)).then(
        () => 'done' as const,
        (e: { code?: string }) => e.code,
      );
      if (outcome === 'done') {
        // past the last netlink change: this setup ran to the end
        expect(await d.client.teardown(SB)).toEqual({ errors: [] });
        expect(ipDump(p.pod), `teardown after ${n - 1} crash points`).toBe(before);
        await stopDaemon(d);
        return n - 1;
      }
      expect(outcome, `setup.nl${n}`).toMatch(/^(EPIPE|ECONNRESET)$/);
      expect(await d.exited).toBe('SIGKILL');
      const r = await startDaemon(dir);
      expect(await r.client.list(), `after setup.nl${n}`).toEqual([]);
      expect(ipDump(p.pod), `rolled back after setup.nl${n}`).toBe(before);
      assertClean(p.pod);
      await stopDaemon(r);
    }
    throw new Error('setup never completed');
  }

  it('setup killed after each netlink change (bridge-shaped pod, IPv6): every one rolls back exactly', async () => {
    const steps = await everyNetlinkStep({ ipv6: true });
    console.log(`[crash] bridge pod: ${steps} netlink crash points, each rolled back exactly`);
    // strip (one per address and route), bridge, then alias, address, tap, veth, neighbour
    expect(steps).toBeGreaterThanOrEqual(7);
  }, 180_000);

  it('setup killed after each netlink change (ptp-shaped pod, gateway /32 + routes via it)', async () => {
    const steps = await everyNetlinkStep({ shape: 'ptp' });
    console.log(`[crash] ptp pod: ${steps} netlink crash points, each rolled back exactly`);
    expect(steps).toBeGreaterThanOrEqual(7);
  }, 180_000);

  /** Sets up, then crashes the teardown at `point`; true when the point was reached. */
  async function teardownCrash(point: string, o: PodOptions): Promise<boolean> {
    removeAllNetns();
    const p = makePod(o);
    const before = await settledDump(p.pod);
    const d = await startDaemon(dir, crashEnv(point));
    await d.client.setup(request(p));
    const outcome = await d.client.teardown(SB).then(
      (res) => res,
      (e: { code?: string }) => e.code,
    );
    if (typeof outcome === 'object') {
      expect(outcome).toEqual({ errors: [] });
      await stopDaemon(d);
      return false;
    }
    expect(outcome, point).toMatch(/^(EPIPE|ECONNRESET)$/);
    expect(await d.exited).toBe('SIGKILL');
    const r = await startDaemon(dir);
    expect(r.logs()).toContainEqual(expect.objectContaining({ msg: 'interrupted teardown: finishing', sandboxId: SB }));
    expect(await r.client.list(), point).toEqual([]);
    expect(records()).toEqual([]);
    expect(ipDump(p.pod), `teardown finished after ${point}`).toBe(before);
    assertClean(p.pod);
    expect(await r.client.teardown(SB)).toEqual({ errors: [] }); // idempotent
    await stopDaemon(r);
    return true;
  }

  it('teardown killed after each step: the restart finishes it and the pod is exactly as before', async () => {
    expect(await teardownCrash('teardown.recorded', { ipv6: true })).toBe(true);
    expect(await teardownCrash('teardown.unfenced', { ipv6: true })).toBe(true);
    expect(await teardownCrash('teardown.links-deleted', { shape: 'ptp', ipv6: true })).toBe(true);
    let n = 1;
    while (await teardownCrash(`teardown.nl${n}`, { shape: 'ptp', ipv6: true })) n++;
    console.log(`[crash] teardown: ${n - 1} netlink crash points, each finished exactly after the restart`);
    expect(n - 1).toBeGreaterThanOrEqual(5);
  }, 180_000);

  it('a restart killed in the middle of its own rollback: the next restart finishes it exactly', async () => {
    const p = makePod({ shape: 'ptp', ipv6: true });
    const before = await settledDump(p.pod);
    await setupDies(await startDaemon(dir, crashEnv('setup.nl5')), p); // bridge up, tap enslaved, veth not yet: half built
    // the recovery's own rollback dies after its fence removal, then after its 3rd netlink change
    for (const point of ['rollback.unfenced', 'rollback.nl3']) {
      await expect(startDaemon(dir, crashEnv(point))).rejects.toThrow(/exited \(SIGKILL\) before ready/);
      expect(records()).toEqual([`${SB}.json`]);
    }
    const r = await startDaemon(dir);
    expect(await r.client.list()).toEqual([]);
    expect(records()).toEqual([]);
    expect(ipDump(p.pod)).toBe(before);
    assertClean(p.pod);
    await retryAndTeardown(r, p, before);
    await stopDaemon(r);
  });
});
