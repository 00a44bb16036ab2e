// nf_tables counter objects over netlink (src/net/nft-objects.ts): the dump request's bytes,
// and the reading of an answer, malformed parts included (a scrape must not throw on them).
import { describe, expect, it } from 'vitest';
import { counterDumpRequest, parseCounterObjects } from '../../src/net/nft-objects';

function attr(type: number, payload: Buffer): Buffer {
  const out = Buffer.alloc((4 + payload.length + 3) & ~3);
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
const str = (s: string) => Buffer.from(`${s}\0`);
const u32be = (v: number) => Buffer.from([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
const u64be = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
};

function newObj(table: string, name: string, type: number, packets: bigint, bytes: bigint, handle: bigint): Buffer {
  const data = Buffer.concat([attr(1, u64be(bytes)), attr(2, u64be(packets))]);
  const attrs = Buffer.concat([
    attr(1, str(table)),
    attr(2, str(name)),
    attr(3, u32be(type)),
    attr(4 | 0x8000, data),
    attr(6, u64be(handle)),
  ]);
  const msg = Buffer.alloc(20 + attrs.length);
  msg.writeUInt32LE(msg.length, 0);
  msg.writeUInt16LE((10 << 8) | 18, 4);
  msg.writeUInt8(7, 16);
  attrs.copy(msg, 20);
  return msg;
}

describe('nf_tables counter objects', () => {
  it("asks for one table's counters of one family, as a dump", () => {
    const r = counterDumpRequest(7, 'tapwire', 42);
    expect(r.readUInt32LE(0)).toBe(r.length);
    expect(r.readUInt16LE(4)).toBe((10 << 8) | 19); // NFT_MSG_GETOBJ
    expect(r.readUInt16LE(6)).toBe(0x301); // REQUEST | DUMP
    expect(r.readUInt32LE(8)).toBe(42);
    expect(r[16]).toBe(7);
    expect(r.subarray(20).toString('latin1')).toContain('tapwire\0');
  });

  it('reads counters, numbers past 2^32 included, and skips what is not one or is cut short', () => {
    const answer = Buffer.concat([
      newObj('tapwire', 'nic0_spoof', 1, 5n, 300n, 7n),
      newObj('tapwire', 'quota1', 2, 0n, 0n, 8n), // not a counter
      newObj('tapwire', 'nic0_in_guestmac', 1, 2n ** 40n, 2n ** 41n, 9n),
    ]);
    expect(parseCounterObjects(answer)).toEqual([
      { table: 'tapwire', name: 'nic0_spoof', packets: 5, bytes: 300, handle: 7 },
      { table: 'tapwire', name: 'nic0_in_guestmac', packets: 2 ** 40, bytes: 2 ** 41, handle: 9 },
    ]);
    const cut = answer.subarray(0, answer.length - 10);
    expect(parseCounterObjects(cut)).toHaveLength(1);
    const lying = Buffer.from(answer);
    lying.writeUInt16LE(0xffff, 20); // the first attribute claims more than its message
    expect(() => parseCounterObjects(lying)).not.toThrow();
    expect(parseCounterObjects(Buffer.alloc(0))).toEqual([]);
  });
});
