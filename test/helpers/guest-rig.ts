// The rig of the privileged tests that boot the real QEMU guest behind a binding: the
// guest image and one SandboxManager over a temp store for the file; after each test the
// guest killed and the test netns removed; after all, the manager closed and the store
// deleted. Also how a peer pod connects to a port the guest serves.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { ensureGuest, QEMU, type GuestImage, type GuestRun } from '../../src/guest';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { silentLogger } from '../../src/util/log';
import { removeAllNetns, type TestNetns } from './netns';
import { requireTools } from './privileged';

export interface GuestRig {
  image: GuestImage;
  mgr: SandboxManager;
  /** the guest the test booted, if any; killed after the test */
  run: GuestRun | undefined;
}

/** Registers the rig's hooks; `prefix` names the temp dir. */
export function guestRig(prefix: string): GuestRig {
  const rig = { run: undefined } as GuestRig;
  let tmp: string;
  beforeAll(async () => {
    const missing = requireTools(QEMU, 'python3');
    if (missing) throw new Error(missing);
    rig.image = await ensureGuest(); // cached by setup.sh; built here on a fresh cache
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    const store = new RecordStore(path.join(tmp, 'state'));
    await store.init();
    rig.mgr = new SandboxManager({ store, log: silentLogger });
  }, 900_000);
  afterEach(async () => {
    await rig.run?.kill();
    rig.run = undefined;
    removeAllNetns();
  });
  afterAll(async () => {
    await rig.mgr?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  return rig;
}

const CONNECT = `
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); c.settimeout(20)
    got = b""
    while True:
        d = c.recv(200)
        if not d: break
        got += d
    print(got.decode().strip())
except ConnectionRefusedError: print("REFUSED")
except OSError as e: print("ERROR", e)
`;

/** What `ns` reads from ip:port until the peer closes: the text, REFUSED, or ERROR and why. */
export function connectFrom(ns: TestNetns, ip: string, port: number): string {
  return ns.exec('python3', ['-c', CONNECT, ip, String(port)]).trim();
}
