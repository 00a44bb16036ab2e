// Netlink attributes (struct nlattr: length u16, type u16, payload padded to 4 bytes),
// host byte order: writing one, reading a stream of them. Pure; rtnetlink's messages
// (rtnl-messages.ts) and the link reads (netlink.ts) share them.

/** One attribute: its header, `payload`, and padding to 4 bytes. */
export function nlattr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

/** A u32 payload. */
export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

/** The attributes of a stream, [type without the nested/byte-order flags, payload]; stops at a malformed one. */
export function* nlattrs(buf: Buffer): Generator<[number, Buffer]> {
  for (let off = 0; off + 4 <= buf.length;) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) return;
    yield [buf.readUInt16LE(off + 2) & 0x3fff, buf.subarray(off + 4, off + len)];
    off += (len + 3) & ~3;
  }
}
