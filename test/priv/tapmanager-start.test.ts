// The real daemon starting where the network is not what it expects: in a netns whose
// loopback is down but which has a default route, the DHCP warm-up over 127.0.0.1 cannot
// run. The daemon must still become ready (the warm-up is an optimisation, skipped with a
// warning), and never end with status 0 before it is ready.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { killDaemon, killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { createNetns, removeAllNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('tapmanager start-up', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-start-'));
  });
  afterEach(async () => {
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('in a netns with loopback down and a default route: ready, the loopback warm-up skipped with a warning', async () => {
    const ns = createNetns('lodown');
    // as in a netns whose lo was never up: no 127.0.0.1 either, so with a default route
    // binding to it fails (EADDRNOTAVAIL) instead of sends failing
    ns.ip('link', 'set', 'lo', 'down');
    ns.ip('addr', 'flush', 'dev', 'lo');
    ns.ip('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1');
    ns.ip('link', 'set', 'up0', 'up');
    ns.ip('link', 'set', 'up1', 'up');
    ns.ip('addr', 'add', '10.251.0.2/24', 'dev', 'up0');
    ns.ip('route', 'add', 'default', 'via', '10.251.0.1');
    expect(ns.ip('-o', 'link', 'show', 'lo')).toContain('state DOWN');

    const d = await startDaemon(dir, { netns: ns.name });
    expect(d.logs()).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'dhcp warm-up over loopback skipped; the first DHCP exchanges may be slower',
        why: expect.any(String),
      }),
    );
    expect(await d.client.list()).toEqual([]);
    await stopDaemon(d);
  });

  // review of issue 14: a second daemon unlinked the first one's sockets, which then ran on unreachable
  it('a second daemon on the same sockets exits 1 naming the socket; the first keeps serving; a stale one is replaced', async () => {
    const first = await startDaemon(dir);
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-start2-'));
    try {
      const args = ['--control-socket', first.controlSocket, '--fd-socket', first.fdSocket];
      await expect(startDaemon(other, { args })).rejects.toThrow(
        /exited \(1\) before ready:[^]*cannot listen on ".*control\.sock": another process is serving it/,
      );
      expect(await first.client.list()).toEqual([]);
      expect(fs.statSync(first.fdSocket).isSocket()).toBe(true);
      // kill -9 leaves both socket files: the next start replaces them
      await killDaemon(first);
      expect(fs.statSync(first.controlSocket).isSocket()).toBe(true);
      const again = await startDaemon(dir);
      expect(await again.client.list()).toEqual([]);
      await stopDaemon(again);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  // review of issue 14: a second daemon on the same records recovered every sandbox again (a second
  // DHCP server on each bridge, and the rollback of the first one's setups in flight)
  it('a second daemon on the same state dir with other sockets exits 1 naming it; after kill -9 the next one starts', async () => {
    const first = await startDaemon(dir);
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-start3-'));
    try {
      const args = ['--state-dir', first.stateDir];
      await expect(startDaemon(other, { args })).rejects.toThrow(
        /exited \(1\) before ready:[^]*state dir ".*" is in use by another tapmanager/,
      );
      expect(await first.client.list()).toEqual([]);
      await killDaemon(first);
      const again = await startDaemon(dir);
      expect(await again.client.list()).toEqual([]);
      await stopDaemon(again);
      // a clean stop gives the state dir back as well
      const third = await startDaemon(other, { args });
      await stopDaemon(third).catch((e) => {
        throw new Error(`${(e as Error).message}\n${JSON.stringify(third.logs())}`);
      });
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('a socket path longer than a Unix socket path may be, or a file that is no socket: exits 1 saying so, nothing made', async () => {
    const long = path.join(dir, `${'x'.repeat(120)}.sock`);
    await expect(startDaemon(dir, { args: ['--control-socket', long] })).rejects.toThrow(
      /exited \(1\)[^]*cannot listen on ".*": 1\d\d bytes, longer than a Unix socket path may be \(107\)/,
    );
    const file = path.join(dir, 'not-a-socket');
    fs.writeFileSync(file, 'keep me');
    await expect(startDaemon(dir, { args: ['--fd-socket', file] })).rejects.toThrow(/it exists and is not a socket/);
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('x'))).toEqual([]);
  });

  it('a start-up step that waits on nothing: exits 1 naming the step, never 0 before ready', async () => {
    const stall = path.resolve(__dirname, '../fixtures/stall-recovery.js');
    await expect(startDaemon(dir, { env: { NODE_OPTIONS: `--require ${stall}` } })).rejects.toThrow(
      /exited \(1\) before ready:[^]*start-up stalled in recovery of the records/,
    );
  });
});
