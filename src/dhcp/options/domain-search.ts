// RFC 3397: domain search list (119). Names in RFC 1035 3.1 wire form (length-prefixed
// labels, each name ending in a zero byte), with RFC 1035 4.1.4 compression pointers
// (0b11 + 14-bit offset) counted from the start of the option data (joined per RFC 3396
// first). Decode follows pointers, only backwards, so a loop cannot hang it. Encode
// compresses repeated suffixes and always ends each name with its terminator.
import { DecodeError } from '../errors';
import type { OptionValue } from './option';

const MAX_NAME = 255; // RFC 1035 2.3.4, wire octets
const MAX_LABEL = 63;

function bad(msg: string, reason: 'bad-option' | 'truncated' = 'bad-option'): DecodeError {
  return new DecodeError(reason, `domain search: ${msg}`, 119);
}

export class DomainSearchOption implements OptionValue {
  constructor(readonly names: readonly string[]) {}

  /** One name at offset; returns the name and the offset after it (in the original stream). */
  private static readName(b: Buffer, start: number): { name: string; next: number } {
    const labels: string[] = [];
    let pos = start;
    let next = -1;
    let wire = 1;
    let floor = start; // pointers must go strictly below the label that holds them
    for (;;) {
      if (pos >= b.length) throw bad(`name at ${start} runs past the end`, 'truncated');
      const len = b[pos]!;
      if (len === 0) {
        if (next < 0) next = pos + 1;
        break;
      }
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        if (pos + 1 >= b.length) throw bad(`pointer at ${pos} is truncated`, 'truncated');
        const target = ((len & 0x3f) << 8) | b[pos + 1]!;
        if (target >= floor) throw bad(`pointer at ${pos} to ${target} does not point backwards`);
        if (next < 0) next = pos + 2;
        floor = target;
        pos = target;
        continue;
      }
      if (kind !== 0) throw bad(`label type 0x${kind.toString(16)} at ${pos} is not supported`);
      if (pos + 1 + len > b.length) throw bad(`label at ${pos} runs past the end`, 'truncated');
      wire += len + 1;
      if (wire > MAX_NAME) throw bad(`name at ${start} is longer than ${MAX_NAME} bytes`);
      labels.push(b.toString('latin1', pos + 1, pos + 1 + len));
      pos += 1 + len;
    }
    return { name: labels.length ? labels.join('.') : '.', next };
  }

  static decode(value: Buffer): DomainSearchOption {
    const names: string[] = [];
    let pos = 0;
    while (pos < value.length) {
      const { name, next } = DomainSearchOption.readName(value, pos);
      names.push(name);
      pos = next;
    }
    if (names.length === 0) throw bad('empty list');
    return new DomainSearchOption(names);
  }

  encode(): Buffer {
    const out: number[] = [];
    const seen = new Map<string, number>(); // lower-cased suffix -> offset
    for (const raw of this.names) {
      const name = raw.endsWith('.') ? raw.slice(0, -1) : raw;
      const labels = name === '' ? [] : name.split('.');
      const bytes = labels.map((l) => Buffer.from(l, 'latin1'));
      // The whole name is checked before any of it is compressed: a pointer shortens what
      // is written, not the name, and decode() rejects a name over 255 bytes however spelt.
      let wire = 1;
      bytes.forEach((label, i) => {
        if (label.length === 0 || label.length > MAX_LABEL) {
          throw new RangeError(`domain search name ${JSON.stringify(raw)}: label ${i} must be 1-${MAX_LABEL} bytes`);
        }
        wire += label.length + 1;
      });
      if (wire > MAX_NAME) throw new RangeError(`domain search name ${JSON.stringify(raw)} is over ${MAX_NAME} bytes`);
      let i = 0;
      for (; i < labels.length; i++) {
        const suffix = labels.slice(i).join('.').toLowerCase();
        const at = seen.get(suffix);
        if (at !== undefined) {
          out.push(0xc0 | (at >> 8), at & 0xff);
          break;
        }
        const label = bytes[i]!;
        if (out.length < 0x4000) seen.set(suffix, out.length);
        out.push(label.length, ...label);
      }
      if (i === labels.length) out.push(0); // the terminator, unless a pointer ended the name
    }
    return Buffer.from(out);
  }

  toString(): string {
    return this.names.join(' ');
  }
}
