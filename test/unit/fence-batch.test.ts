// The fence's netlink batch without a kernel: its framing (one transaction, only the
// last message asks for an ack), the NIC fields written into the shared encoding, and
// how the kernel's replies are judged. fence-batch.test.ts in test/priv compares what the
// kernel makes of it with what it makes of the nft script.
import { describe, expect, it } from 'vitest';
import { batchFailure } from '../../src/tapmanager/fence/apply';
import { fenceBatch } from '../../src/tapmanager/fence/batch';
import type { FenceNic } from '../../src/tapmanager/fence';

const NIC: FenceNic = { bridge: 'br0', veth: 'eth0', tap: 'tap0', guestMac: '52:54:00:aa:bb:01' };
const OTHER: FenceNic = { bridge: 'br0', veth: 'net1', tap: 'tapw-x.1', guestMac: '0a:58:0a:f4:00:2f' };

/** [type, flags, seq] of every message in the buffer. */
function headers(buf: Buffer): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let o = 0; o < buf.length;) {
    const len = buf.readUInt32LE(o);
    out.push([buf.readUInt16LE(o + 4), buf.readUInt16LE(o + 6), buf.readUInt32LE(o + 8)]);
    o += len;
  }
  return out;
}

describe('fenceBatch', () => {
  it('is one transaction whose last message alone asks for the ack', () => {
    const b = fenceBatch('tapwire', [NIC]);
    const h = headers(b.buf);
    expect(h[0]![0]).toBe(0x10); // NFNL_MSG_BATCH_BEGIN
    expect(h[h.length - 1]![0]).toBe(0x11); // NFNL_MSG_BATCH_END
    expect(h.length).toBe(b.seqs.length + 2);
    expect(h.slice(1, -1).map((x) => x[2])).toEqual(b.seqs.map((s) => s.seq));
    const acked = h.filter(([, flags]) => flags & 0x4);
    expect(acked.map((x) => x[2])).toEqual([b.seqs[b.seqs.length - 1]!.seq]);
    expect(b.seqs.slice(0, 2).map((s) => s.what)).toEqual(['add table bridge tapwire', 'flush table bridge tapwire']);
    expect(b.seqs.filter((s) => s.what.startsWith('add counter'))).toHaveLength(62);
  });

  it('writes each NIC into the shared encoding: same layout, its own names and MAC', () => {
    const a = fenceBatch('tapwire', [NIC]);
    const b = fenceBatch('tapwire', [OTHER]);
    expect(b.buf.length).toBe(a.buf.length);
    const ifname = (n: string): Buffer => Buffer.concat([Buffer.from(n), Buffer.alloc(16 - n.length)]);
    const count = (buf: Buffer, what: Buffer): number => {
      let n = 0;
      for (let i = buf.indexOf(what); i >= 0; i = buf.indexOf(what, i + 1)) n++;
      return n;
    };
    const mac = (m: string): Buffer => Buffer.from(m.split(':').map((x) => parseInt(x, 16)));
    // veth: the prerouting and postrouting jumps; tap: the spoof, guest RA and redirect rules; MAC: spoof + guestmac
    expect([count(b.buf, ifname('net1')), count(b.buf, ifname('tapw-x.1')), count(b.buf, mac(OTHER.guestMac))]).toEqual(
      [2, 3, 2],
    );
    expect([count(b.buf, ifname('eth0')), count(b.buf, mac(NIC.guestMac))]).toEqual([0, 0]);
    expect(fenceBatch('tapwire', [NIC]).buf.equals(a.buf)).toBe(true);
  });

  it('validates before encoding, naming the field', () => {
    expect(() => fenceBatch('tapwire', [{ ...NIC, veth: 'eth0" accept' }])).toThrow(/nics\[0\]\.veth/);
    expect(() => fenceBatch('1bad', [NIC])).toThrow(/table/);
  });
});

describe('batchFailure', () => {
  const b = fenceBatch('t', [NIC]);
  const first = b.seqs[0]!.seq;
  const last = b.seqs[b.seqs.length - 1]!.seq;
  it('is undefined when the last message is acked and nothing failed', () => {
    expect(batchFailure(b, [{ seq: last, error: 0 }])).toBeUndefined();
  });
  it('fails on any error, even beside acks for the same number (a failed commit)', () => {
    const why = batchFailure(b, [
      { seq: first, error: 22, message: 'bad' },
      { seq: first, error: 0 },
      { seq: last, error: 0 },
    ]);
    expect(why).toBe('add table bridge t: EINVAL (bad)');
  });
  it('names the batch as a whole, unknown numbers, and says how many more', () => {
    expect(batchFailure(b, [{ seq: b.beginSeq, error: 1 }])).toBe('the batch: EPERM');
    expect(batchFailure(b, [{ seq: 999999, error: 2 }])).toBe('message 999999: ENOENT');
    const many = [3, 4, 5, 6, 7].map((i) => ({ seq: b.seqs[i]!.seq, error: 17 }));
    expect(batchFailure(b, many)).toMatch(/^add chain .*: EEXIST; .*; and 2 more$/);
  });
  it('fails when the kernel did not answer at all', () => {
    expect(batchFailure(b, [])).toMatch(/^no answer from the kernel to add rule to chain nic0_out/);
  });
});
