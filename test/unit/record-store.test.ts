// The tapmanager record store: a save that changes only the state rewrites the file's head
// in place (same inode, the rest byte for byte as before), any other change writes the
// whole file anew, and every file reads back as the record it was saved as.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RECORD_VERSION, type SandboxRecord } from '../../src/tapmanager/record';
import { RecordStore } from '../../src/tapmanager/store';
import { fileIdentity, overwriteHead } from '../../src/util/atomic-file';
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
    it(`a state change rewrites only the head in place (not with fsync); any other change the whole file (fsync ${fsync})`, async () => {
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
        // without fsync the same file, rewritten in place; with it written whole (durable), by
        // a rename (whose new inode may reuse the old one's number: not asserted)
        if (!fsync) expect(fs.statSync(file).ino).toBe(ino);
        expect(text.length).toBe(first.length);
        expect(text.slice(62)).toBe(first.slice(62)); // all but the head as it was
        expect(JSON.parse(text)).toEqual(rec);
      }

      rec.nics = [{ passt: { pid: 42 } } as unknown as SandboxRecord['nics'][number]];
      const before = fs.statSync(file).ino;
      await s.save(rec);
      expect(fs.statSync(file).ino).not.toBe(before); // written whole, by rename
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
    // written by someone else since (a restored copy, same inode, another length; or
    // truncated): written whole, never a head over someone else's bytes
    for (const change of [
      () => fs.writeFileSync(file, JSON.stringify({ ...loaded, state: 'ready' }, null, 2)),
      () => fs.truncateSync(file, 0),
    ]) {
      change();
      loaded!.state = loaded!.state === 'ready' ? 'tearing-down' : 'ready';
      await other.save(loaded!);
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(loaded);
    }
    // removed through it: forgotten, the next save is whole
    await other.remove('sb-1');
    expect(fs.existsSync(file)).toBe(false);
    await other.save(loaded!);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(loaded);
  });

  it('two saves of one record at once land in the order asked, and the next head-only save builds on the last', async () => {
    const s = new RecordStore(tmp);
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
  it('rewrites the first bytes of the version of a file it is told of, else nothing; refuses an empty or too long head', () => {
    const file = path.join(tmp, 'f');
    fs.writeFileSync(file, 'abcdefgh');
    const v1 = fileIdentity(file)!;
    const v2 = overwriteHead(file, Buffer.from('XY'), v1);
    expect(v2).toBeDefined();
    expect(overwriteHead(file, Buffer.from('Z'), v1)).toBeUndefined(); // not that version any more
    expect(overwriteHead(file, Buffer.from('Z'), v2!)).toBeDefined();
    expect(fs.readFileSync(file, 'utf8')).toBe('ZYcdefgh');
    expect(() => overwriteHead(file, Buffer.alloc(0), v2!)).toThrow(RangeError);
    expect(() => overwriteHead(file, Buffer.alloc(513), v2!)).toThrow(RangeError);
    expect(overwriteHead(path.join(tmp, 'none'), Buffer.from('X'), v1)).toBeUndefined();
    expect(fs.existsSync(path.join(tmp, 'none'))).toBe(false);
    expect(fileIdentity(path.join(tmp, 'none'))).toBeUndefined();
  });
});
