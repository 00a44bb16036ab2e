// The per-test rig of the privileged tests whose guest is a netns behind tap-relay.py:
// a SandboxManager over a fresh record store in a temp dir before each test; after it,
// the guest's processes killed, the relay stopped, the manager closed, every test netns
// removed and the temp dir deleted, even when the test failed.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { silentLogger } from '../../src/util/log';
import { killAll } from '../fixtures/dhcp-procs';
import { removeAllNetns } from './netns';

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
