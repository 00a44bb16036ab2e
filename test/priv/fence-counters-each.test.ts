// The fence counters of many sandboxes in one native call (readFenceCountersEach: one
// nf_tables dump per namespace on one pool thread), as a metrics scrape reads them: the
// same counters, in the same order, as `tapctl describe`'s read through libnftables;
// the values the kernel holds; and a namespace gone, replaced (another cookie), not a
// namespace, or not read before the deadline is that item's error, not the call's.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { applyFence, readFenceCounters, readFenceCountersEach, type FenceNic } from '../../src/tapmanager/fence';
import { pinNetns } from '../../src/tapmanager/netns-pin';
import { createNetns, removeAllNetns, removeNetns } from '../helpers/netns';
import { describePrivileged, requireTools } from '../helpers/privileged';

const missing = requireTools('nft');
const TABLE = 'twcount';

const nic = (i: number): FenceNic => ({
  bridge: `br${i}`,
  veth: `eth${i}`,
  tap: `tap${i}`,
  guestMac: `52:54:00:00:00:0${i}`,
});

const cookieOf = (p: string): string => {
  const ns = pinNetns(p);
  ns.close();
  return ns.cookie;
};

describePrivileged('fence counters of many namespaces', () => {
  afterEach(() => removeAllNetns());

  it('reads what libnftables reads, in rule order, with the values the kernel holds', async () => {
    if (missing) throw new Error(missing);
    const a = createNetns('fca');
    const b = createNetns('fcb');
    await applyFence(a.path, TABLE, [nic(0)]);
    await applyFence(b.path, TABLE, [nic(0), nic(1)]);
    // a table of counters with values, beside the fence
    b.exec(
      'nft',
      ['-f', '-'],
      'table bridge twvals {\n counter c1 { packets 7 bytes 99 }\n counter c2 { packets 3 bytes 5 }\n}\n',
    );
    const got = await readFenceCountersEach(
      [
        { netnsPath: a.path, table: TABLE, cookie: cookieOf(a.path) },
        { netnsPath: b.path, table: TABLE },
        { netnsPath: b.path, table: 'twvals' },
        { netnsPath: b.path, table: 'nosuch' },
      ],
      5000,
    );
    expect(got[0]).toEqual(await readFenceCounters(a.path, TABLE));
    expect(got[1]).toEqual(await readFenceCounters(b.path, TABLE));
    expect((got[1] as unknown[]).length).toBeGreaterThan((got[0] as unknown[]).length);
    expect(got[2]).toEqual([
      { name: 'c1', packets: 7, bytes: 99 },
      { name: 'c2', packets: 3, bytes: 5 },
    ]);
    expect(got[3]).toEqual([]);
  });

  it('a namespace gone, replaced or not a namespace fails its item only; the deadline fails the rest', async () => {
    if (missing) throw new Error(missing);
    const a = createNetns('fcc');
    const b = createNetns('fcd');
    await applyFence(a.path, TABLE, [nic(0)]);
    const gone = createNetns('fce');
    const gonePath = gone.path;
    removeNetns(gone);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'twfc-')), 'not-netns');
    fs.writeFileSync(file, '');
    try {
      const got = await readFenceCountersEach(
        [
          { netnsPath: gonePath, table: TABLE },
          { netnsPath: a.path, table: TABLE, cookie: cookieOf(b.path) },
          { netnsPath: file, table: TABLE },
          { netnsPath: a.path, table: TABLE, cookie: cookieOf(a.path) },
        ],
        5000,
      );
      const code = (x: unknown): unknown => (x as { code?: unknown }).code;
      expect(code(got[0])).toBe('ENOENT');
      expect(code(got[1])).toBe('ESTALE');
      expect(code(got[2])).toBe('EINVAL');
      expect(got[3]).toEqual(await readFenceCounters(a.path, TABLE));
      // a deadline far shorter than reading 40 namespaces: the last ones are not read
      const many = await readFenceCountersEach(
        Array.from({ length: 40 }, () => ({ netnsPath: a.path, table: TABLE })),
        0.001,
      );
      expect(many.every((x) => Array.isArray(x) || code(x) === 'ETIMEDOUT')).toBe(true);
      expect(code(many[39])).toBe('ETIMEDOUT');
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });
});
