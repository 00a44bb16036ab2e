// The tapmanager record store: a save that changes only the state rewrites the file's head
// in place (same inode, the rest byte for byte as before), any other change writes the
// whole file anew, and every file reads back as the record it was saved as.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RECORD_VERSION, type SandboxRecord } from '../../src/tapmanager/record';
import { RecordStore } from '../../src/tapmanager/store';
import { overwriteHead } from '../../src/util/atomic-file';
import { silentLogger } from '../../src/util/log';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-recstore-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function record(id = 'sb-1'): SandboxRecord {
  return {
    version: RECORD_VERSION,
    sandboxId: id,
    netnsPath: '/run/netns/x',
    state: 'setting-up',
    createdAt: '2026-12-02T13:00:00.000Z',
    updatedAt: '2026-12-02T13:00:00.000Z',
    request: { op: 'setup', sandboxId: id, netnsPath: '/run/netns/x', cniResult: { cniVersion: '1.0.0', ips: [] } },
    token: 'secret',
    fenceTable: 'tapwire',
    nics: [],
  };
}

describe('RecordStore', () => {
  for (const fsync of [false, true]) {
    it(`a state change rewrites only the head in place; any other change the whole file (fsync ${fsync})`, async () => {
      const s = new RecordStore(tmp, { fsync });
      const file = path.join(s.dir, 'sb-1.json');
      const rec = record();
      await s.save(rec);
      const first = fs.readFileSync(file, 'utf8');
      const ino = fs.statSync(file).ino;
      expect(first).toMatch(/^\{"state":"setting-up" {2},"updatedAt":"[0-9T:.Z-]{24}",\n "version": 1,/);

      for (const state of ['ready', 'tearing-down'] as const) {
        rec.state = state;
        await s.save(rec);
        const text = fs.readFileSync(file, 'utf8');
        expect(fs.statSync(file).ino).toBe(ino); // the same file, rewritten in place
        expect(text.length).toBe(first.length);
        expect(text.slice(62)).toBe(first.slice(62)); // all but the head as it was
        expect(JSON.parse(text)).toEqual(rec);
      }

      rec.nics = [{ passt: { pid: 42 } } as unknown as SandboxRecord['nics'][number]];
      await s.save(rec);
      expect(fs.statSync(file).ino).not.toBe(ino); // written whole, by rename
      expect((await s.loadAll(silentLogger)).map((r) => r.nics)).toEqual([rec.nics]);
    });
  }

  it('writes whole what it did not write itself: a file loaded at start, one put back, one gone', async () => {
    const s = new RecordStore(tmp);
    const rec = record();
    await s.save(rec);
    const file = path.join(s.dir, 'sb-1.json');
    // another daemon's store (a restart) knows nothing of what this one wrote
    const other = new RecordStore(tmp);
    const [loaded] = await other.loadAll(silentLogger);
    loaded!.state = 'ready';
    const ino = fs.statSync(file).ino;
    await other.save(loaded!);
    expect(fs.statSync(file).ino).not.toBe(ino);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ state: 'ready' });
    // removed under it: written again whole
    fs.rmSync(file);
    loaded!.state = 'tearing-down';
    await other.save(loaded!);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(loaded);
    // removed through it: forgotten, the next save is whole
    await other.remove('sb-1');
    expect(fs.existsSync(file)).toBe(false);
    await other.save(loaded!);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(loaded);
  });

  it('two saves of one record at once land in the order asked, and the next head-only save builds on the last', async () => {
    const s = new RecordStore(tmp, { fsync: true }); // durable writes await: they could overlap
    const a = record();
    await s.save(a);
    const file = path.join(s.dir, 'sb-1.json');
    const b = { ...a, token: 'other' };
    a.state = 'ready';
    await Promise.all([s.save(a), s.save(b)]);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(b); // b was asked last
    const ino = fs.statSync(file).ino;
    b.state = 'tearing-down';
    await s.save(b);
    expect(fs.statSync(file).ino).toBe(ino); // only the state changed since b was written whole
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(b);
  });
});

describe('overwriteHead', () => {
  it('rewrites the first bytes of a file, refuses an empty or too long head, says when there is no file', async () => {
    const file = path.join(tmp, 'f');
    fs.writeFileSync(file, 'abcdefgh');
    expect(await overwriteHead(file, Buffer.from('XY'), { durable: false })).toBe(true);
    expect(await overwriteHead(file, Buffer.from('Z'))).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toBe('ZYcdefgh');
    await expect(overwriteHead(file, Buffer.alloc(0))).rejects.toThrow(RangeError);
    await expect(overwriteHead(file, Buffer.alloc(513))).rejects.toThrow(RangeError);
    expect(await overwriteHead(path.join(tmp, 'none'), Buffer.from('X'), { durable: false })).toBe(false);
    expect(await overwriteHead(path.join(tmp, 'none'), Buffer.from('X'))).toBe(false);
    expect(fs.existsSync(path.join(tmp, 'none'))).toBe(false);
  });
});
