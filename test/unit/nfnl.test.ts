// The nfnetlink batch writer, byte for byte: framing, attribute padding, nests, the ack
// only on the last message, and its one scratch buffer.
import { expect, it } from 'vitest';
import { NFPROTO_BRIDGE, NftBatchWriter, NLM_F_CREATE } from '../../src/net/nfnl';

it('frames messages between BATCH_BEGIN and BATCH_END, padded attributes and patched nests', () => {
  const w = new NftBatchWriter(NFPROTO_BRIDGE, 7);
  w.begin(0 /* NEWTABLE */, NLM_F_CREATE, 'add table t');
  w.str(1, 't'); // "t\0": len 6, padded to 8
  w.close();
  w.begin(3 /* NEWCHAIN */, 0, 'add chain c');
  const n = w.nest(4);
  w.u32(1, -200); // big-endian two's complement
  w.nestEnd(n);
  w.close();
  const b = w.finish();
  expect(b.beginSeq).toBe(7);
  expect(b.seqs).toEqual([
    { seq: 8, what: 'add table t' },
    { seq: 9, what: 'add chain c' },
  ]);
  // prettier-ignore
  expect([...b.buf]).toEqual([
    // BATCH_BEGIN: len 20, type 0x10, flags REQUEST, seq 7, pid 0; nfgenmsg AF_UNSPEC, v0, res_id 10 (BE)
    20, 0, 0, 0, 0x10, 0, 1, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10,
    // NEWTABLE (0x0a00): len 28, flags REQUEST|CREATE, seq 8; nfgenmsg NFPROTO_BRIDGE
    28, 0, 0, 0, 0x00, 0x0a, 0x01, 0x04, 8, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0,
    6, 0, 1, 0, 0x74, 0, 0, 0,
    // NEWCHAIN (0x0a03): len 32, flags REQUEST|ACK (the last message asks for the ack), seq 9
    32, 0, 0, 0, 0x03, 0x0a, 0x05, 0x00, 9, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0,
    12, 0, 4, 0x80, 8, 0, 1, 0, 0xff, 0xff, 0xff, 0x38,
    // BATCH_END: seq 10
    20, 0, 0, 0, 0x11, 0, 1, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10,
  ]);
});

it('writes one batch at a time, and gives the buffer back when a batch is abandoned', () => {
  const a = new NftBatchWriter(NFPROTO_BRIDGE);
  expect(() => new NftBatchWriter(NFPROTO_BRIDGE)).toThrow(/another batch/);
  a.abandon();
  const b = new NftBatchWriter(NFPROTO_BRIDGE);
  b.begin(0, 0, 'x');
  expect(() => b.bytes(1, new Uint8Array(70000))).toThrow(/too long/);
  b.abandon();
  expect(() => new NftBatchWriter(NFPROTO_BRIDGE).finish()).not.toThrow();
});
