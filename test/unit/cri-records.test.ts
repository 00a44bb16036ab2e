// tapwire-cri's start from the records a previous run left: every record is listed, the name
// index is rebuilt (the oldest of two records for one name - left by a version that reserved
// none - keeps it), and a record with a malformed createdAt neither stops the start nor the list.
import { status } from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { SandboxRecord } from '../../src/cri/record';
import { SandboxService } from '../../src/cri/sandboxes';
import { FakeTapmanager } from '../fixtures/cni/cri-harness';

let tmp: string | undefined;
afterEach(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function record(id: string, createdAt: string, name = 'p'): SandboxRecord {
  return {
    v: 1,
    id,
    metadata: { name, uid: 'u', namespace: 'ns', attempt: 0 },
    labels: {},
    annotations: {},
    runtimeHandler: '',
    hostname: name,
    portMappings: [],
    createdAt,
    state: 'SANDBOX_NOTREADY',
    netnsPath: '/nonexistent',
    network: { name: 'n', ifName: 'eth0', loopback: false },
    networkDown: true,
  };
}

it('rebuilds the name index from the records, oldest first, whatever createdAt holds', async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-crirec-'));
  const dir = path.join(tmp, 'state', 'sandboxes');
  fs.mkdirSync(dir, { recursive: true });
  const [older, newer, odd] = ['a', 'b', 'c'].map((c) => c.repeat(64)) as [string, string, string];
  for (const r of [record(newer, '1700000000000000002'), record(older, '999'), record(odd, 'garbage', 'q')]) {
    fs.writeFileSync(path.join(dir, `${r.id}.json`), JSON.stringify(r));
  }
  fs.mkdirSync(path.join(tmp, 'net.d'));
  fs.writeFileSync(
    path.join(tmp, 'net.d', '10-n.conflist'),
    JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'bridge' }] }),
  );
  const svc = new SandboxService({
    cniConfDir: path.join(tmp, 'net.d'),
    cniBinDirs: [path.join(tmp, 'bin')],
    stateDir: path.join(tmp, 'state'),
    netnsDir: path.join(tmp, 'netns'),
    tapmanager: new FakeTapmanager(),
  });
  await svc.start();
  const ids = svc.list(undefined).map((s) => s.id);
  expect([...ids].sort()).toEqual([older, newer, odd]);
  expect(ids.indexOf(older)).toBeLessThan(ids.indexOf(newer));
  const meta = { name: 'p', uid: 'u', namespace: 'ns', attempt: 0 };
  await expect(svc.run({ metadata: meta }, '')).rejects.toMatchObject({
    code: status.ALREADY_EXISTS,
    message: `failed to reserve sandbox name "p_ns_u_0": name "p_ns_u_0" is reserved for "${older}"`,
  });
  await svc.remove(older);
  expect(
    svc
      .list(undefined)
      .map((s) => s.id)
      .sort(),
  ).toEqual([newer, odd]);
});
