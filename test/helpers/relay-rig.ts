// The per-test rig of the privileged tests whose guest is a netns behind tap-relay.py:
// a SandboxManager over a fresh record store in a temp dir before each test; after it,
// the guest's processes killed, the relay stopped, the manager closed, every test netns
// removed and the temp dir deleted, even when the test failed.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { silentLogger } from '../../src/util/log';
import { waitFor } from '../fixtures/dhcp-net';
import { killAll } from '../fixtures/dhcp-procs';
import { createNetns, removeAllNetns, type TestNetns } from './netns';

export interface RelayRig {
  /** the test's temp dir */
  dir: string;
  store: RecordStore;
  mgr: SandboxManager;
  /** the tap relay the test started, if any; stopped after the test */
  relay: ChildProcess | undefined;
}

/** Kills the relay (if it still runs) and waits for it to be gone. */
export async function stopRelay(rig: RelayRig): Promise<void> {
  const relay = rig.relay;
  if (relay && relay.exitCode === null && relay.signalCode === null) {
    const gone = new Promise((r) => relay.once('exit', r));
    relay.kill('SIGKILL');
    await gone;
  }
  rig.relay = undefined;
}

/**
 * Registers the rig's beforeEach and afterEach; `prefix` names the temp dir, `storeIn`
 * the store's folder in it ('' for the dir itself), `beforeNetnsGone` what the test undoes
 * while its netns are still there (after the manager is closed).
 */
export function relayRig(opts: { prefix: string; storeIn?: string; beforeNetnsGone?: () => void }): RelayRig {
  const rig = { relay: undefined } as RelayRig;
  beforeEach(async () => {
    rig.dir = fs.mkdtempSync(path.join(os.tmpdir(), opts.prefix));
    rig.store = new RecordStore(opts.storeIn ? path.join(rig.dir, opts.storeIn) : rig.dir);
    await rig.store.init();
    rig.mgr = new SandboxManager({ store: rig.store, log: silentLogger });
  });
  afterEach(async () => {
    await killAll();
    await stopRelay(rig);
    await rig.mgr.close();
    opts.beforeNetnsGone?.();
    removeAllNetns();
    fs.rmSync(rig.dir, { recursive: true, force: true });
  });
  return rig;
}

const RELAY = path.join(__dirname, '..', 'fixtures', 'tap-relay.py');

/**
 * Starts tap-relay.py (as rig.relay) between the NIC's tap, its one fd from the manager,
 * and `link` in the guest netns; resolves once the relay is ready, with a reader of what
 * it has written.
 */
export async function startRelay(rig: RelayRig, guest: TestNetns, netKey: string, link = 'r0'): Promise<() => string> {
  const { fds } = await rig.mgr.fds(netKey);
  expect(fds).toHaveLength(1);
  let out = '';
  try {
    rig.relay = spawn('python3', [RELAY, '--fd', '3', guest.path, link], {
      stdio: ['ignore', 'pipe', 'pipe', fds[0]!],
    });
  } finally {
    fds.forEach((fd) => fs.closeSync(fd));
  }
  rig.relay.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  rig.relay.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('relay ready', () => out.includes('RELAY-READY'), 10_000);
  return () => out;
}

/**
 * The "VM": netns `name` with the guest NIC g0 (the NIC's MAC, and an MTU when given) and
 * its peer r0, relayed to the sandbox's tap. g0 comes up once the relay runs, so that its
 * router solicitation and DAD reach the sandbox. Resolves with the netns and the relay's
 * output.
 */
export async function relayedGuest(
  rig: RelayRig,
  name: string,
  netKey: string,
  nic: { mac: string; mtu?: number },
): Promise<{ guest: TestNetns; relayOut: () => string }> {
  const guest = createNetns(name);
  const mtu = nic.mtu ? ['mtu', String(nic.mtu)] : [];
  guest.ip('link', 'add', 'g0', 'type', 'veth', 'peer', 'name', 'r0');
  guest.ip('link', 'set', 'g0', 'address', nic.mac, ...mtu);
  guest.ip('link', 'set', 'r0', ...mtu, 'up');
  const relayOut = await startRelay(rig, guest, netKey);
  guest.ip('link', 'set', 'g0', 'up');
  return { guest, relayOut };
}
