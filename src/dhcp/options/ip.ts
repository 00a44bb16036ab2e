// Options holding IPv4 addresses: one (RFC 2132 3.3 subnet mask, 5.3 broadcast address,
// 9.1 requested IP, 9.7 server identifier) or a list (3.5 routers, 3.8 domain name servers).
import { checkOption } from '../errors';
import { ipv4FromBuffer } from '../../net/ipv4';
import { ipv4ToBuffer } from '../ipv4';
import type { OptionValue } from './option';

export class IpOption implements OptionValue {
  constructor(readonly address: string) {}

  static decode(value: Buffer): IpOption {
    checkOption(value.length === 4, undefined, `an IPv4 address option needs 4 bytes, got ${value.length}`);
    return new IpOption(ipv4FromBuffer(value));
  }

  encode(): Buffer {
    return ipv4ToBuffer(this.address);
  }

  toString(): string {
    return this.address;
  }
}

export class IpListOption implements OptionValue {
  constructor(readonly addresses: readonly string[]) {}

  static decode(value: Buffer): IpListOption {
    checkOption(
      value.length >= 4 && value.length % 4 === 0,
      undefined,
      `an IPv4 address list needs a non-zero multiple of 4 bytes, got ${value.length}`,
    );
    const out: string[] = [];
    for (let i = 0; i < value.length; i += 4) out.push(ipv4FromBuffer(value, i));
    return new IpListOption(out);
  }

  encode(): Buffer {
    return Buffer.concat(this.addresses.map(ipv4ToBuffer));
  }

  toString(): string {
    return this.addresses.join(', ');
  }
}
