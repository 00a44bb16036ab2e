// RFC 3646 4 (option 24) and RFC 8415 10: a list of domain names in RFC 1035 3.1 wire form
// (length-prefixed labels, each name ending in a zero byte), uncompressed: a pointer is
// malformed here. Also the wire form RFC 8106's DNSSL option carries.
import { Opt6 } from '../constants';
import { Dhcp6DecodeError } from '../errors';
import type { Option6Value } from './option';

const MAX_NAME = 255; // RFC 1035 2.3.4, wire octets
const MAX_LABEL = 63;

function bad(msg: string, reason: 'bad-option' | 'truncated' = 'bad-option'): Dhcp6DecodeError {
  return new Dhcp6DecodeError(reason, `domain list: ${msg}`, Opt6.DOMAIN_LIST);
}

/** Decodes names from b[start..end); with `padded`, trailing zero bytes after a name are padding (RFC 8106 5.2). */
export function readNames(b: Buffer, start = 0, end = b.length, padded = false): string[] {
  const names: string[] = [];
  let pos = start;
  while (pos < end) {
    if (padded && names.length > 0 && b[pos] === 0 && b.subarray(pos, end).every((x) => x === 0)) break;
    const labels: string[] = [];
    let wire = 1;
    for (;;) {
      if (pos >= end) throw bad(`name at ${start} runs past the end`, 'truncated');
      const len = b[pos]!;
      if (len === 0) {
        pos++;
        break;
      }
      if (len > MAX_LABEL) throw bad(`label length ${len} at ${pos} (compression is not allowed)`);
      if (pos + 1 + len > end) throw bad(`label at ${pos} runs past the end`, 'truncated');
      wire += len + 1;
      if (wire > MAX_NAME) throw bad(`name is longer than ${MAX_NAME} bytes`);
      labels.push(b.toString('latin1', pos + 1, pos + 1 + len));
      pos += 1 + len;
    }
    names.push(labels.length ? labels.join('.') : '.');
  }
  if (names.length === 0) throw bad('empty list');
  return names;
}

/** Wire form of names, uncompressed; throws RangeError on a label or name that cannot be encoded. */
export function writeNames(names: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const raw of names) {
    const name = raw.endsWith('.') ? raw.slice(0, -1) : raw;
    const labels = name === '' ? [] : name.split('.');
    let wire = 1;
    for (const [i, l] of labels.entries()) {
      const bytes = Buffer.from(l, 'latin1');
      if (bytes.length === 0 || bytes.length > MAX_LABEL) {
        throw new RangeError(`domain name ${JSON.stringify(raw)}: label ${i} must be 1-${MAX_LABEL} bytes`);
      }
      wire += bytes.length + 1;
      parts.push(Buffer.from([bytes.length]), bytes);
    }
    if (wire > MAX_NAME) throw new RangeError(`domain name ${JSON.stringify(raw)} is over ${MAX_NAME} bytes`);
    parts.push(Buffer.from([0]));
  }
  return Buffer.concat(parts);
}

export class DomainListOption implements Option6Value {
  constructor(readonly names: readonly string[]) {}

  static decode(value: Buffer): DomainListOption {
    return new DomainListOption(readNames(value));
  }

  encode(): Buffer {
    return writeNames(this.names);
  }

  toString(): string {
    return this.names.join(' ');
  }
}
