import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RECORD_VERSION, type SandboxRecord } from '../../src/tapmanager/record';
import { RecordStore } from '../../src/tapmanager/store';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-rs-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const quiet = { error: () => undefined } as never;

function record(sandboxId: string): SandboxRecord {
  return {
    version: RECORD_VERSION,
    sandboxId,
    netnsPath: '/run/netns/x',
    netnsCookie: '1',
    state: 'setting-up',
    createdAt: '',
    updatedAt: '',
    request: { op: 'setup', sandboxId, netnsPath: '/run/netns/x' },
    token: 't',
    fenceTable: 'tapwire',
    nics: [],
  } as SandboxRecord;
}

const states = async (s: RecordStore): Promise<[string, string][]> =>
  (await s.loadAll(quiet)).map((r) => [r.sandboxId, r.state]);

describe('RecordStore ready markers', () => {
  it('a write-ahead reads back setting-up; marked ready, ready; a later tearing-down wins over the marker', async () => {
    const s = new RecordStore(tmp);
    await s.init();
    const a = record('a');
    await s.save(a);
    expect(await states(s)).toEqual([['a', 'setting-up']]);
    s.markReady(a);
    expect(a.state).toBe('ready');
    expect(fs.statSync(path.join(s.readyDir, 'a')).ino).toBe(fs.statSync(path.join(s.dir, 'a.json')).ino);
    expect(await states(new RecordStore(tmp))).toEqual([['a', 'ready']]);
    a.state = 'tearing-down';
    await s.save(a);
    expect(await states(new RecordStore(tmp))).toEqual([['a', 'tearing-down']]);
    await s.remove('a');
    expect(fs.readdirSync(s.dir).filter((f) => !f.endsWith('.tmp'))).toEqual([]);
    expect(fs.readdirSync(s.readyDir)).toEqual([]);
  });

  it('a marker left by an earlier sandbox of the same id does not make a new write-ahead ready', async () => {
    const s = new RecordStore(tmp);
    await s.init();
    const old = record('a');
    await s.save(old);
    s.markReady(old);
    fs.rmSync(path.join(s.dir, 'a.json')); // a crash between the two removals
    await s.save(record('a'));
    expect(await states(s)).toEqual([['a', 'setting-up']]);
  });

  it('a marker without a record is removed when the records are read; one of an unreadable record is kept', async () => {
    const s = new RecordStore(tmp);
    await s.init();
    for (const id of ['gone', 'torn']) {
      const r = record(id);
      await s.save(r);
      s.markReady(r);
    }
    fs.rmSync(path.join(s.dir, 'gone.json'));
    fs.writeFileSync(path.join(s.dir, 'torn.json'), '{');
    expect(await states(s)).toEqual([]);
    expect(fs.readdirSync(s.readyDir)).toEqual(['torn']);
  });

  it('markReady makes the ready dir when it is not there', async () => {
    const s = new RecordStore(tmp);
    const a = record('a');
    await s.save(a);
    fs.rmSync(s.readyDir, { recursive: true, force: true });
    s.markReady(a);
    expect(await states(s)).toEqual([['a', 'ready']]);
  });
});
