// Writing nfnetlink messages (pure): netlink attributes, nf_tables messages and the batch
// that frames them (one transaction: the kernel commits every message between
// NFNL_MSG_BATCH_BEGIN and NFNL_MSG_BATCH_END, or none). Written in place into one
// growing buffer, nests closed by patching their length, as libmnl does: a fence batch is
// ~1500 attributes, and a Buffer each would cost more than the kernel's whole commit.
// Integers inside nf_tables attributes are big-endian; the netlink header is host order
// (little-endian here). Reference: include/uapi/linux/netfilter/nf_tables.h, nfnetlink.h.

export const NETLINK_NETFILTER = 12;
export const NFPROTO_BRIDGE = 7;

const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
export const NLM_F_APPEND = 0x800;
export const NLM_F_CREATE = 0x400;
const NLA_F_NESTED = 0x8000;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFNL_SUBSYS_NFTABLES = 10;

const align4 = (n: number): number => (n + 3) & ~3;

/** Batches are written here, then copied out: one buffer, not one per batch (writing is synchronous). */
let SCRATCH = Buffer.alloc(64 << 10);
let scratchInUse = false;

/** Encoded NUL-terminated names: a batch repeats a few dozen of them hundreds of times. */
const STRINGS = new Map<string, Buffer>();

export interface Batch {
  buf: Buffer;
  /** sequence number of each message between begin and end (in order), and what it does */
  seqs: { seq: number; what: string }[];
  /** sequence number of NFNL_MSG_BATCH_BEGIN (errors about the batch as a whole carry it) */
  beginSeq: number;
}

/** Builds one nf_tables batch for one family. */
export class NftBatchWriter {
  private buf = SCRATCH;
  private off = 0;
  private seq: number;
  private msgStart = -1;
  private readonly seqs: Batch['seqs'] = [];
  private readonly beginSeq: number;
  private lastFlagsAt = -1;

  constructor(
    private readonly family: number,
    seq0 = 1,
  ) {
    if (scratchInUse) throw new Error('NftBatchWriter: another batch is being written');
    scratchInUse = true;
    this.seq = seq0 >>> 0;
    this.beginSeq = this.seq;
    this.control(NFNL_MSG_BATCH_BEGIN);
  }

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
    SCRATCH = next;
  }

  private header(type: number, flags: number, family: number, resId: number): void {
    this.ensure(20);
    const b = this.buf;
    const o = this.off;
    b.writeUInt32LE(0, o); // length: patched by end()
    b.writeUInt16LE(type, o + 4);
    b.writeUInt16LE(flags, o + 6);
    b.writeUInt32LE(this.seq++ >>> 0, o + 8);
    b.writeUInt32LE(0, o + 12); // port id: the kernel
    b.writeUInt8(family, o + 16); // nfgenmsg
    b.writeUInt8(0, o + 17);
    b.writeUInt16BE(resId, o + 18);
    this.msgStart = o;
    this.off += 20;
  }

  private end(): void {
    this.buf.writeUInt32LE(this.off - this.msgStart, this.msgStart);
    this.msgStart = -1;
  }

  private control(type: number): void {
    this.header(type, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
    this.end();
  }

  /**
   * Starts an nf_tables message (NFT_MSG_*). Only the batch's last message asks for an
   * ack (finish() sets it): the kernel reports every error anyway, and one ack per
   * message would cost ~1 KB of receive buffer each.
   */
  begin(type: number, flags: number, what: string, family = this.family): void {
    this.seqs.push({ seq: this.seq >>> 0, what });
    this.lastFlagsAt = this.off + 6;
    this.header((NFNL_SUBSYS_NFTABLES << 8) | type, NLM_F_REQUEST | flags, family, 0);
  }

  /** Ends the message begun last. */
  close(): void {
    this.end();
  }

  private attrHeader(type: number, payloadLen: number): number {
    if (payloadLen > 0xffff - 4) throw new RangeError(`netlink attribute ${type}: ${payloadLen} bytes is too long`);
    this.ensure(4 + align4(payloadLen));
    const b = this.buf;
    const o = this.off;
    const len = 4 + payloadLen;
    b[o] = len & 0xff;
    b[o + 1] = len >> 8;
    b[o + 2] = type & 0xff;
    b[o + 3] = type >> 8;
    this.off = o + 4;
    return o;
  }

  /** Zeroes up to the next 4-byte boundary (the buffer is reused, not fresh). */
  private pad(): void {
    while (this.off & 3) this.buf[this.off++] = 0;
  }

  u32(type: number, v: number): void {
    this.attrHeader(type, 4);
    const b = this.buf;
    const o = this.off;
    b[o] = (v >>> 24) & 0xff;
    b[o + 1] = (v >>> 16) & 0xff;
    b[o + 2] = (v >>> 8) & 0xff;
    b[o + 3] = v & 0xff;
    this.off = o + 4;
  }

  u64(type: number, v: bigint): void {
    this.attrHeader(type, 8);
    this.buf.writeBigUInt64BE(v, this.off);
    this.off += 8;
  }

  /** A NUL-terminated string (names are encoded once and reused). */
  str(type: number, s: string): void {
    let bytes = STRINGS.get(s);
    if (!bytes) {
      bytes = Buffer.from(`${s}\0`);
      if (STRINGS.size < 4096) STRINGS.set(s, bytes);
    }
    this.bytes(type, bytes);
  }

  /** The low `n` bytes (n <= 6) of a non-negative integer, big-endian. */
  beInt(type: number, v: number, n: number): void {
    this.attrHeader(type, n);
    const b = this.buf;
    for (let i = this.off + n - 1; i >= this.off; i--) {
      b[i] = v % 256;
      v = Math.floor(v / 256);
    }
    this.off += n;
    this.pad();
  }

  /** An interface name as the kernel compares it: IFNAMSIZ (16) bytes, zero-padded. Returns where they start. */
  ifname(type: number, name: string): number {
    this.attrHeader(type, 16);
    const b = this.buf;
    const o = this.off;
    b.fill(0, o, o + 16);
    b.write(name, o, 15, 'latin1');
    this.off = o + 16;
    return o;
  }

  /** Returns where the bytes start in the batch. */
  bytes(type: number, v: Uint8Array | readonly number[]): number {
    this.attrHeader(type, v.length);
    const at = this.off;
    this.buf.set(v as ArrayLike<number>, at);
    this.off += v.length;
    this.pad();
    return at;
  }

  /** Opens a nested attribute; returns the handle nestEnd() takes. */
  nest(type: number): number {
    return this.attrHeader(type | NLA_F_NESTED, 0);
  }

  nestEnd(start: number): void {
    if (this.off - start > 0xffff)
      throw new RangeError(`netlink nest at ${start}: ${this.off - start} bytes is too long`);
    this.buf.writeUInt16LE(this.off - start, start);
  }

  /** Ends the batch; its last message asks for the ack that says the batch went through. */
  finish(): Batch {
    try {
      if (this.lastFlagsAt >= 0) {
        this.buf.writeUInt16LE(this.buf.readUInt16LE(this.lastFlagsAt) | NLM_F_ACK, this.lastFlagsAt);
      }
      this.control(NFNL_MSG_BATCH_END);
      return { buf: Buffer.from(this.buf.subarray(0, this.off)), seqs: this.seqs, beginSeq: this.beginSeq };
    } finally {
      scratchInUse = false;
    }
  }

  /** Gives the scratch buffer back without a batch (after a failure while writing). */
  abandon(): void {
    scratchInUse = false;
  }
}
