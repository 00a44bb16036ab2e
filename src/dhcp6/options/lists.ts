// List-valued options: the Option Request Option (RFC 8415 21.7, 16-bit codes), and
// DNS Recursive Name Server (RFC 3646 3, option 23: IPv6 addresses).
import { ipFromBuffer, ipToBuffer } from '../../net/addr-text';
import { Opt6 } from '../constants';
import { checkOption } from '../errors';
import type { Option6Value } from './option';

export class OroOption implements Option6Value {
  constructor(readonly codes: readonly number[]) {}

  static decode(value: Buffer): OroOption {
    checkOption(value.length % 2 === 0, Opt6.ORO, `an option request list needs an even length, got ${value.length}`);
    const codes: number[] = [];
    for (let i = 0; i < value.length; i += 2) codes.push(value.readUInt16BE(i));
    return new OroOption(codes);
  }

  encode(): Buffer {
    const b = Buffer.alloc(this.codes.length * 2);
    this.codes.forEach((c, i) => b.writeUInt16BE(c, i * 2));
    return b;
  }

  toString(): string {
    return this.codes.join(', ');
  }
}

export class Ip6ListOption implements Option6Value {
  constructor(readonly addresses: readonly string[]) {}

  static decode(value: Buffer, code: number): Ip6ListOption {
    checkOption(
      value.length >= 16 && value.length % 16 === 0,
      code,
      `an IPv6 address list needs a non-zero multiple of 16 bytes, got ${value.length}`,
    );
    const out: string[] = [];
    for (let i = 0; i < value.length; i += 16) out.push(ipFromBuffer(value.subarray(i, i + 16)));
    return new Ip6ListOption(out);
  }

  encode(): Buffer {
    return Buffer.concat(this.addresses.map(ipToBuffer));
  }

  toString(): string {
    return this.addresses.join(', ');
  }
}
