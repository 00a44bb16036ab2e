// nf_tables stateful objects over netlink (pure): the dump request for a table's named
// counters (NFT_MSG_GETOBJ, filtered by table and type in the kernel) and the reading of
// its answer. Integers inside nf_tables attributes are big-endian; the netlink header is
// host order. Reference: include/uapi/linux/netfilter/nf_tables.h (nft_object_attributes,
// nft_counter_attributes).

const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_NEWOBJ = 18;
const NFT_MSG_GETOBJ = 19;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NFT_OBJECT_COUNTER = 1;
const OBJ = { TABLE: 1, NAME: 2, TYPE: 3, DATA: 4, HANDLE: 6 };
const COUNTER = { BYTES: 1, PACKETS: 2 };

/** One named counter object as the kernel dumps it. */
export interface NftCounterObject {
  table: string;
  name: string;
  packets: number;
  bytes: number;
  /** grows in creation order */
  handle: number;
}

function strAttr(type: number, s: string): Buffer {
  const payload = Buffer.from(`${s}\0`);
  const out = Buffer.alloc((4 + payload.length + 3) & ~3);
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

function u32beAttr(type: number, v: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeUInt16LE(8, 0);
  out.writeUInt16LE(type, 2);
  out.writeUInt32BE(v >>> 0, 4);
  return out;
}

/** The dump request for the named counters of table `table` of `family` (NFPROTO_*). */
export function counterDumpRequest(family: number, table: string, seq = 1): Buffer {
  const attrs = Buffer.concat([strAttr(OBJ.TABLE, table), u32beAttr(OBJ.TYPE, NFT_OBJECT_COUNTER)]);
  const msg = Buffer.alloc(20 + attrs.length);
  msg.writeUInt32LE(msg.length, 0);
  msg.writeUInt16LE((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETOBJ, 4);
  msg.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  msg.writeUInt32LE(seq >>> 0, 8);
  msg.writeUInt32LE(0, 12);
  msg.writeUInt8(family, 16); // nfgenmsg: family, version 0, resource id 0
  attrs.copy(msg, 20);
  return msg;
}

/**
 * The counter objects in a dump's answer (messages back to back); anything else is
 * skipped. Read by offsets, without a Buffer or BigInt per attribute: a scrape reads
 * ~60 of them per sandbox, for every sandbox.
 */
export function parseCounterObjects(answer: Buffer): NftCounterObject[] {
  const out: NftCounterObject[] = [];
  for (let off = 0; off + 20 <= answer.length;) {
    const len = answer.readUInt32LE(off);
    if (len < 20 || off + len > answer.length) break;
    if (answer.readUInt16LE(off + 4) === ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWOBJ)) {
      const o = readObject(answer, off + 20, off + len);
      if (o) out.push(o);
    }
    off += (len + 3) & ~3;
  }
  return out;
}

/** The counter object whose attributes are answer[start, end), or undefined if it is not one. */
function readObject(b: Buffer, start: number, end: number): NftCounterObject | undefined {
  let table: string | undefined;
  let name: string | undefined;
  let type = -1;
  let handle = 0;
  let packets = 0;
  let bytes = 0;
  for (let a = start; a + 4 <= end;) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    const t = b.readUInt16LE(a + 2) & 0x3fff;
    const v = a + 4;
    const vend = a + alen;
    if (t === OBJ.TABLE) table = cString(b, v, vend);
    else if (t === OBJ.NAME) name = cString(b, v, vend);
    else if (t === OBJ.TYPE && vend - v >= 4) type = b.readUInt32BE(v);
    else if (t === OBJ.HANDLE && vend - v >= 8) handle = u64(b, v);
    else if (t === OBJ.DATA) {
      for (let c = v; c + 4 <= vend;) {
        const clen = b.readUInt16LE(c);
        if (clen < 4 || c + clen > vend) break;
        const ct = b.readUInt16LE(c + 2) & 0x3fff;
        if (clen >= 12 && ct === COUNTER.BYTES) bytes = u64(b, c + 4);
        else if (clen >= 12 && ct === COUNTER.PACKETS) packets = u64(b, c + 4);
        c += (clen + 3) & ~3;
      }
    }
    a += (alen + 3) & ~3;
  }
  if (type !== NFT_OBJECT_COUNTER || table === undefined || name === undefined) return undefined;
  return { table, name, packets, bytes, handle };
}

/** A big-endian u64 as a number (exact below 2^53). */
function u64(b: Buffer, at: number): number {
  return b.readUInt32BE(at) * 0x1_0000_0000 + b.readUInt32BE(at + 4);
}

function cString(b: Buffer, start: number, end: number): string {
  const nul = b.indexOf(0, start);
  return b.toString('latin1', start, nul < 0 || nul > end ? end : nul);
}
