import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RECORD_VERSION, type SandboxRecord } from '../../src/tapmanager/record';
import { RecordStore } from '../../src/tapmanager/store';
import { silentLogger } from '../../src/util/log';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-store-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

// only what the store reads: the id and the version
const record = (sandboxId: string, state: SandboxRecord['state']): SandboxRecord =>
  ({ version: RECORD_VERSION, sandboxId, state }) as SandboxRecord;

const ids = Array.from({ length: 40 }, (_, i) => `sb-${i}`);

describe('RecordStore: the writes of one record land in the order asked', () => {
  it('a save asked before the removal never lands after it (no record comes back)', async () => {
    const store = new RecordStore(tmp, { fsync: true }); // durable writes take several turns of the loop
    await store.init();
    await Promise.all(ids.map((id) => Promise.all([store.save(record(id, 'ready')), store.remove(id)])));
    expect(await store.loadAll(silentLogger)).toEqual([]);
  });

  it('the last save asked is the state on disk, whatever the earlier ones wrote', async () => {
    const store = new RecordStore(tmp, { fsync: true }); // durable writes take several turns of the loop
    await store.init();
    await Promise.all(
      ids.map((id) => {
        const older = store.save(record(id, 'setting-up'));
        return Promise.all([older, store.save(record(id, 'ready'))]);
      }),
    );
    const states = (await store.loadAll(silentLogger)).map((r) => r.state);
    expect(states).toEqual(ids.map(() => 'ready'));
  });

  it('a failed write does not stop the next one of the same record', async () => {
    const store = new RecordStore(tmp, { fsync: true }); // durable writes take several turns of the loop
    await store.init();
    const file = path.join(store.dir, 'b.json');
    fs.mkdirSync(file); // the rename onto it fails
    const failed = store.save(record('b', 'setting-up'));
    const next = store.save(record('b', 'ready'));
    await expect(failed).rejects.toThrow();
    await expect(next).rejects.toThrow();
    fs.rmdirSync(file);
    await store.save(record('b', 'ready'));
    expect((await store.loadAll(silentLogger)).map((r) => r.state)).toEqual(['ready']);
  });
});
