// The DHCPv6 option area (RFC 8415 21.1): option-code(2) option-len(2) value, repeated to
// the end of the enclosing field. Unlike DHCPv4, a code may appear more than once (one
// IA_NA per IA), so an area is a list in wire order, not a map.
import { Dhcp6DecodeError } from '../errors';

export interface RawOption {
  code: number;
  /** the value bytes, no code or length; a copy, not a view of the input */
  value: Buffer;
}

/** At most this many options in one area: more is hostile, not a client. */
export const MAX_OPTIONS = 256;

export function readOptions(buf: Buffer, start: number, end: number, where: string): RawOption[] {
  const out: RawOption[] = [];
  let pos = start;
  while (pos < end) {
    if (pos + 4 > end) throw new Dhcp6DecodeError('truncated', `${where}: option header at ${pos} runs past the end`);
    const code = buf.readUInt16BE(pos);
    const len = buf.readUInt16BE(pos + 2);
    if (pos + 4 + len > end) {
      throw new Dhcp6DecodeError(
        'truncated',
        `${where}: option ${code} at ${pos} claims ${len} bytes, ${end - pos - 4} left`,
        code,
      );
    }
    if (out.length === MAX_OPTIONS)
      throw new Dhcp6DecodeError('bad-option', `${where}: more than ${MAX_OPTIONS} options`);
    out.push({ code, value: Buffer.from(buf.subarray(pos + 4, pos + 4 + len)) });
    pos += 4 + len;
  }
  return out;
}

export function optionsSize(opts: readonly RawOption[]): number {
  let n = 0;
  for (const o of opts) n += 4 + o.value.length;
  return n;
}

/** Writes the options at offset; returns the offset after them. Throws RangeError on a value over 65535 bytes. */
export function writeOptions(opts: readonly RawOption[], buf: Buffer, offset: number): number {
  let pos = offset;
  for (const o of opts) {
    if (o.value.length > 0xffff) throw new RangeError(`option ${o.code} is ${o.value.length} bytes, more than 65535`);
    buf.writeUInt16BE(o.code, pos);
    buf.writeUInt16BE(o.value.length, pos + 2);
    o.value.copy(buf, pos + 4);
    pos += 4 + o.value.length;
  }
  return pos;
}

export function encodeOptions(opts: readonly RawOption[]): Buffer {
  const buf = Buffer.alloc(optionsSize(opts));
  writeOptions(opts, buf, 0);
  return buf;
}
