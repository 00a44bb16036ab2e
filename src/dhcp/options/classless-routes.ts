// RFC 3442: classless static route option (121). Each route is encoded as
//   width (1 byte, 0..32) | significant octets of the destination (ceil(width/8)) | router (4)
// A router of 0.0.0.0 means the destination is on-link. Clients that honour this option
// ignore option 3, so the default route must be in it too (RFC 3442, "DHCP Client
// Behavior") — the caller puts it there; routes are encoded in the order given, which is
// the order a client adds them.
import { DecodeError } from '../errors';
import { formatIpv4, ipv4FromBuffer, maskFromPrefix, parseCidr4 } from '../../net/ipv4';
import { parseIpv4 } from '../ipv4';
import type { OptionValue } from './option';

export interface ClasslessRoute {
  /** 'a.b.c.d/len' */
  dst: string;
  /** '0.0.0.0' = on-link */
  gw: string;
}

export class ClasslessRoutesOption implements OptionValue {
  constructor(readonly routes: readonly ClasslessRoute[]) {}

  static decode(value: Buffer): ClasslessRoutesOption {
    const routes: ClasslessRoute[] = [];
    let i = 0;
    while (i < value.length) {
      const width = value[i]!;
      if (width > 32) throw new DecodeError('bad-option', `classless route ${routes.length}: width ${width} > 32`, 121);
      const sig = (width + 7) >> 3;
      if (i + 1 + sig + 4 > value.length) {
        throw new DecodeError('truncated', `classless route ${routes.length} is truncated`, 121);
      }
      let dst = 0;
      for (let k = 0; k < sig; k++) dst |= value[i + 1 + k]! << (24 - 8 * k);
      dst = (dst & maskFromPrefix(width)) >>> 0;
      routes.push({ dst: `${formatIpv4(dst)}/${width}`, gw: ipv4FromBuffer(value, i + 1 + sig) });
      i += 1 + sig + 4;
    }
    if (routes.length === 0) throw new DecodeError('bad-option', 'classless route option is empty', 121);
    return new ClasslessRoutesOption(routes);
  }

  encode(): Buffer {
    const parts: number[] = [];
    this.routes.forEach((r, idx) => {
      const prefix = parseCidr4(r.dst);
      if (!prefix) throw new RangeError(`classless route ${idx}: ${JSON.stringify(r.dst)} is not an IPv4 prefix`);
      const width = prefix.len;
      const dst = (parseIpv4(prefix.ip, `routes[${idx}].dst`) & maskFromPrefix(width)) >>> 0;
      const gw = parseIpv4(r.gw, `routes[${idx}].gw`);
      parts.push(width);
      for (let k = 0; k < (width + 7) >> 3; k++) parts.push((dst >>> (24 - 8 * k)) & 255);
      parts.push(gw >>> 24, (gw >>> 16) & 255, (gw >>> 8) & 255, gw & 255);
    });
    return Buffer.from(parts);
  }

  toString(): string {
    return this.routes.map((r) => `${r.dst} via ${r.gw}`).join(', ');
  }
}
