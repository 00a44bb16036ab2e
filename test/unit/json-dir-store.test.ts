import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JsonDirStore } from '../../src/util/json-dir-store';

interface Rec {
  v: 1;
  id: string;
  n: number;
}

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-jds-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function store(dir = path.join(tmp, 'recs')) {
  return new JsonDirStore<Rec>(dir, {
    idOf: (r) => r.id,
    checkId: (id) => {
      if (!/^[a-z0-9-]+$/.test(id)) throw new TypeError(`bad id ${JSON.stringify(id)}`);
    },
    parse: (x) => {
      if ((x as Rec)?.v !== 1) throw new Error('not v1');
      return x as Rec;
    },
  });
}

describe('JsonDirStore', () => {
  it('makes its directory 0700 on the first save, writes 0600 files, reads them back, removes them', async () => {
    const s = store();
    expect(await s.loadAll()).toEqual({ records: [], errors: [] }); // no directory yet
    await s.save({ v: 1, id: 'a', n: 1 });
    await s.save({ v: 1, id: 'b', n: 2 });
    await s.save({ v: 1, id: 'a', n: 3 });
    expect(fs.statSync(s.dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(s.dir, 'a.json')).mode & 0o777).toBe(0o600);
    expect((await s.loadAll()).records).toEqual([
      { v: 1, id: 'a', n: 3 },
      { v: 1, id: 'b', n: 2 },
    ]);
    await s.remove('a');
    await s.remove('a'); // gone already: fine
    expect((await s.loadAll()).records.map((r) => r.id)).toEqual(['b']);
  });

  it('makes the directory again when it was removed under it', async () => {
    const s = store();
    await s.save({ v: 1, id: 'a', n: 1 });
    fs.rmSync(s.dir, { recursive: true });
    await s.save({ v: 1, id: 'a', n: 2 });
    expect((await s.loadAll()).records).toEqual([{ v: 1, id: 'a', n: 2 }]);
  });

  it("reports files that are not records with their path and leaves them; removes dead writers' temp files", async () => {
    const s = store();
    await s.init();
    await s.save({ v: 1, id: 'good', n: 1 });
    fs.writeFileSync(path.join(s.dir, 'torn.json'), '{"v":1,"id":');
    fs.writeFileSync(path.join(s.dir, 'old.json'), '{"v":0,"id":"old"}');
    fs.writeFileSync(path.join(s.dir, 'moved.json'), '{"v":1,"id":"other","n":1}');
    fs.writeFileSync(path.join(s.dir, 'Bad_Id.json'), '{"v":1,"id":"Bad_Id","n":1}');
    fs.writeFileSync(path.join(s.dir, 'notes.txt'), 'not looked at');
    const dead = path.join(s.dir, '.x.json.999999999.abc123.tmp');
    const mine = path.join(s.dir, `.y.json.${process.pid}.def456.tmp`);
    fs.writeFileSync(dead, '{');
    fs.writeFileSync(mine, '{');
    const { records, errors } = await s.loadAll();
    expect(records.map((r) => r.id)).toEqual(['good']);
    expect(errors.map((e) => [path.basename(e.file), e.error.message])).toEqual([
      ['Bad_Id.json', 'bad id "Bad_Id"'],
      ['moved.json', `its id is "other", not its file's name`],
      ['old.json', 'not v1'],
      ['torn.json', expect.stringMatching(/JSON/)],
    ]);
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.existsSync(mine)).toBe(true); // perhaps a write of this process under way
    expect(fs.existsSync(path.join(s.dir, 'torn.json'))).toBe(true);
  });

  it('refuses an id that cannot name a file, before touching anything', async () => {
    const s = store();
    await expect(s.save({ v: 1, id: '../x', n: 1 })).rejects.toThrow('bad id "../x"');
    await expect(s.remove('../x')).rejects.toThrow('bad id');
    expect(fs.existsSync(s.dir)).toBe(false);
  });

  it('an unreadable directory is an error, not an empty store', async () => {
    fs.writeFileSync(path.join(tmp, 'file'), '');
    await expect(store(path.join(tmp, 'file')).loadAll()).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});
