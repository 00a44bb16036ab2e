// A DHCP message (RFC 2131 2): the BOOTP header fields in wire order, then the options
// as raw bytes keyed by code, decoded on demand by the typed classes in ./options.
//
//   op(1) htype(1) hlen(1) hops(1) xid(4) secs(2) flags(2) ciaddr(4) yiaddr(4) siaddr(4)
//   giaddr(4) chaddr(16) sname(64) file(128) | magic cookie(4) | options...
//
// decode() throws only DecodeError; it honours option overload (52, RFC 2132 9.3) by
// reading options from `file` then `sname`, and joins split options (RFC 3396). encode()
// writes 53 first and 82 last, splits long values, and pads to 300 bytes (RFC 1542 2.1).
import { hwAddrToBuffer, macFromBuffer } from '../net/mac';
import {
  FLAG_BROADCAST,
  HEADER_SIZE,
  MAGIC_COOKIE,
  MAX_PACKET_SIZE,
  MESSAGE_TYPE_NAMES,
  MIN_PACKET_SIZE,
  Opt,
  OP_BOOTREPLY,
  OP_BOOTREQUEST,
  OPTIONS_OFFSET,
} from './constants';
import { DecodeError } from './errors';
import { ipv4FromBuffer } from '../net/ipv4';
import { writeIpv4 } from './ipv4';
import { OPTION_TYPES, type OptionType, type OptionValue } from './options';
import { optionAreaSize, readOptionArea, writeOptionArea } from './options/wire';

const SNAME_OFFSET = 44;
const FILE_OFFSET = 108;
const ZERO_IP = '0.0.0.0';

/**
 * A zero-filled buffer of its own, carved from Node's shared pool when small (as
 * Buffer.allocUnsafe does) instead of a fresh ArrayBuffer per call like Buffer.alloc: a
 * reply makes several, and per-message ArrayBuffers are what kept the garbage collector busy.
 */
function zeroed(n: number): Buffer {
  return Buffer.allocUnsafe(n).fill(0);
}

/**
 * The empty sname and file that decoded packets and replies share (most messages carry
 * none, and the server decodes and builds one of each per exchange): a packet's field
 * may be one of these, so code replaces a decoded packet's or a reply's sname/file and
 * never writes into it. Own allocations: they live as long as the process.
 */
export const NO_SNAME: Buffer = Buffer.alloc(64);
export const NO_FILE: Buffer = Buffer.alloc(128);

function isZero(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

/** buf[from, to) as a buffer of its own, or `none` when it is all zero. */
function copyOr(buf: Buffer, from: number, to: number, none: Buffer): Buffer {
  return isZero(buf, from, to) ? none : Buffer.from(buf.subarray(from, to));
}

/** The address at buf[off]; the unset one without making a string (requests mostly have three). */
function addressAt(buf: Buffer, off: number): string {
  return isZero(buf, off, off + 4) ? ZERO_IP : ipv4FromBuffer(buf, off);
}

export class DhcpPacket {
  op = OP_BOOTREQUEST;
  htype = 1; // Ethernet (RFC 1700 hardware types)
  hlen = 6;
  hops = 0;
  xid = 0;
  secs = 0;
  flags = 0;
  ciaddr = ZERO_IP;
  yiaddr = ZERO_IP;
  siaddr = ZERO_IP;
  giaddr = ZERO_IP;
  /** 16 bytes; the first hlen are the client hardware address */
  chaddr: Buffer;
  /** 64 bytes, NUL-padded; when decoded or a reply, possibly the shared NO_SNAME: replace it, never write into it */
  sname: Buffer;
  /** 128 bytes, NUL-padded; when decoded or a reply, possibly the shared NO_FILE: replace it, never write into it */
  file: Buffer;
  /** option values by code (no code/length bytes), joined per RFC 3396 */
  options = new Map<number, Buffer>();

  /** A zeroed packet; decode() hands in the copies it made so no zero buffers are made for nothing. */
  constructor(fields?: { chaddr: Buffer; sname: Buffer; file: Buffer }) {
    this.chaddr = fields?.chaddr ?? zeroed(16);
    this.sname = fields?.sname ?? zeroed(64);
    this.file = fields?.file ?? zeroed(128);
  }

  static decode(buf: Buffer): DhcpPacket {
    if (buf.length < OPTIONS_OFFSET) {
      throw new DecodeError(
        'truncated',
        `message is ${buf.length} bytes, the header and cookie need ${OPTIONS_OFFSET}`,
      );
    }
    if (buf.length > MAX_PACKET_SIZE) {
      throw new DecodeError('oversized', `message is ${buf.length} bytes, more than ${MAX_PACKET_SIZE}`);
    }
    const p = new DhcpPacket({
      chaddr: Buffer.from(buf.subarray(28, 44)),
      sname: copyOr(buf, SNAME_OFFSET, FILE_OFFSET, NO_SNAME),
      file: copyOr(buf, FILE_OFFSET, HEADER_SIZE, NO_FILE),
    });
    p.op = buf[0]!;
    if (p.op !== OP_BOOTREQUEST && p.op !== OP_BOOTREPLY)
      throw new DecodeError('bad-field', `op is ${p.op}, not 1 or 2`);
    p.htype = buf[1]!;
    p.hlen = buf[2]!;
    if (p.hlen > 16) throw new DecodeError('bad-field', `hlen is ${p.hlen}, more than 16`);
    p.hops = buf[3]!;
    p.xid = buf.readUInt32BE(4);
    p.secs = buf.readUInt16BE(8);
    p.flags = buf.readUInt16BE(10);
    p.ciaddr = addressAt(buf, 12);
    p.yiaddr = addressAt(buf, 16);
    p.siaddr = addressAt(buf, 20);
    p.giaddr = addressAt(buf, 24);
    const cookie = buf.readUInt32BE(HEADER_SIZE);
    if (cookie !== MAGIC_COOKIE) {
      throw new DecodeError(
        'bad-cookie',
        `magic cookie is 0x${cookie.toString(16)}, want 0x${MAGIC_COOKIE.toString(16)}`,
      );
    }
    readOptionArea(buf, OPTIONS_OFFSET, buf.length, p.options);
    const overload = p.options.get(Opt.OVERLOAD);
    if (overload !== undefined) {
      if (overload.length !== 1 || overload[0]! < 1 || overload[0]! > 3) {
        throw new DecodeError('bad-option', `overload must be one byte 1..3, got ${overload.toString('hex')}`, 52);
      }
      // RFC 2131 4.1: options, then file, then sname; an overload option inside them is ignored.
      const v = overload[0]!;
      if (v & 1) readOptionArea(buf, FILE_OFFSET, HEADER_SIZE, p.options);
      if (v & 2) readOptionArea(buf, SNAME_OFFSET, FILE_OFFSET, p.options);
      // The moved options now live in the map: the fields that carried them hold no file
      // or server name, and encode() writes every option into the options area, so keeping
      // 52 (or the bytes) would make a decode of our own encoding read them twice.
      if (v & 1) p.file = NO_FILE;
      if (v & 2) p.sname = NO_SNAME;
      p.options.delete(Opt.OVERLOAD);
    }
    return p;
  }

  /** Bytes encode() will produce. */
  encodedSize(): number {
    return Math.max(MIN_PACKET_SIZE, OPTIONS_OFFSET + optionAreaSize(this.options));
  }

  encode(): Buffer {
    const buf = zeroed(this.encodedSize());
    buf[0] = this.op;
    buf[1] = this.htype;
    buf[2] = this.hlen;
    buf[3] = this.hops;
    buf.writeUInt32BE(this.xid >>> 0, 4);
    buf.writeUInt16BE(this.secs, 8);
    buf.writeUInt16BE(this.flags, 10);
    writeIpv4(buf, 12, this.ciaddr);
    writeIpv4(buf, 16, this.yiaddr);
    writeIpv4(buf, 20, this.siaddr);
    writeIpv4(buf, 24, this.giaddr);
    this.chaddr.copy(buf, 28, 0, 16);
    this.sname.copy(buf, SNAME_OFFSET, 0, 64);
    this.file.copy(buf, FILE_OFFSET, 0, 128);
    buf.writeUInt32BE(MAGIC_COOKIE, HEADER_SIZE);
    writeOptionArea(this.options, buf, OPTIONS_OFFSET);
    return buf; // zero padding after END up to 300 bytes comes from zeroed()
  }

  /** The client hardware address as lower-case aa:bb:..., hlen bytes. */
  get mac(): string {
    return macFromBuffer(this.chaddr.subarray(0, this.hlen));
  }

  setMac(mac: string): this {
    const bytes = hwAddrToBuffer(mac);
    this.chaddr = zeroed(16);
    bytes.copy(this.chaddr);
    this.hlen = bytes.length;
    return this;
  }

  get broadcast(): boolean {
    return (this.flags & FLAG_BROADCAST) !== 0;
  }

  /** Option 53, or undefined when missing or malformed. */
  get messageType(): number | undefined {
    const v = this.options.get(Opt.MESSAGE_TYPE);
    return v?.length === 1 ? v[0] : undefined;
  }

  /** The decoded option, undefined if absent; throws DecodeError if malformed. */
  get<T extends OptionValue>(code: number, type: OptionType<T>): T | undefined {
    const v = this.options.get(code);
    if (v === undefined) return undefined;
    try {
      return type.decode(v);
    } catch (e) {
      if (e instanceof DecodeError && e.option === undefined) throw new DecodeError(e.reason, e.message, code);
      throw e;
    }
  }

  /** The decoded option, or fallback when absent or malformed. */
  getOr<T extends OptionValue, F>(code: number, type: OptionType<T>, fallback: F): T | F {
    try {
      return this.get(code, type) ?? fallback;
    } catch (e) {
      if (e instanceof DecodeError) return fallback;
      throw e;
    }
  }

  set(code: number, value: OptionValue | Buffer): this {
    this.options.set(code, Buffer.isBuffer(value) ? value : value.encode());
    return this;
  }

  delete(code: number): this {
    this.options.delete(code);
    return this;
  }

  toString(): string {
    const t = this.messageType;
    const head =
      `${t !== undefined ? (MESSAGE_TYPE_NAMES[t] ?? `type ${t}`) : this.op === OP_BOOTREPLY ? 'BOOTREPLY' : 'BOOTREQUEST'}` +
      ` xid=0x${this.xid.toString(16)} chaddr=${this.mac} flags=0x${this.flags.toString(16)}` +
      ` ciaddr=${this.ciaddr} yiaddr=${this.yiaddr} siaddr=${this.siaddr} giaddr=${this.giaddr}`;
    const opts = [...this.options].map(([code, v]) => {
      const known = OPTION_TYPES[code];
      if (!known) return `${code}=${v.toString('hex')}`;
      try {
        return `${known[0]}(${code})=${known[1].decode(v).toString()}`;
      } catch {
        return `${known[0]}(${code})=<malformed ${v.toString('hex')}>`;
      }
    });
    return [head, ...opts].join('\n  ');
  }
}
