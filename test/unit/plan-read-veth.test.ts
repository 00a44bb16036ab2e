// The raw rtnetlink parsers behind readVethSnapshot, on byte literals: struct rtmsg /
// struct ifaddrmsg plus attributes, as the kernel sends them (little-endian host).
import { describe, expect, it } from 'vitest';
import { nlattr } from '../../src/net/nlattr';
import { parseAddrMessage, parseRouteMessage } from '../../src/net/rtnl-parse';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const attr = nlattr;
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};
const ip4 = (s: string) => Buffer.from(s.split('.').map(Number));
/** struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags u32 */
function rtmsg(f: {
  family?: number;
  dstLen: number;
  srcLen?: number;
  tos?: number;
  table?: number;
  proto?: number;
  scope?: number;
  type?: number;
  flags?: number;
}): Buffer {
  const b = Buffer.from([
    f.family ?? 2,
    f.dstLen,
    f.srcLen ?? 0,
    f.tos ?? 0,
    f.table ?? 254,
    f.proto ?? 3,
    f.scope ?? 0,
    f.type ?? 1,
    0,
    0,
    0,
    0,
  ]);
  b.writeUInt32LE(f.flags ?? 0, 8);
  return b;
}

describe('parseRouteMessage', () => {
  it('"10.77.0.0/24 via 10.77.0.1 dev #2 proto boot src 10.77.0.2" (ptp plugin)', () => {
    const msg = hex(
      `
      02 18 00 00 fe 03 00 01  00000000   # AF_INET, dst_len 24, src_len 0, tos 0, table main, proto boot, scope universe, unicast, flags 0
      0800 0f00 fe000000                  # RTA_TABLE 254
      0800 0100 0a4d0000                  # RTA_DST 10.77.0.0
      0800 0700 0a4d0002                  # RTA_PREFSRC 10.77.0.2
      0800 0500 0a4d0001                  # RTA_GATEWAY 10.77.0.1
      0800 0400 02000000                  # RTA_OIF 2
    `.replace(/#.*$/gm, ''),
    );
    expect(parseRouteMessage(msg, 2)).toEqual({
      family: 4,
      dst: '10.77.0.0/24',
      gateway: '10.77.0.1',
      prefsrc: '10.77.0.2',
      scope: 'universe',
      protocol: 'boot',
      type: 'unicast',
      table: 254,
    });
    expect(parseRouteMessage(msg, 3)).toBeUndefined(); // another interface's route
  });

  it('the default route has no RTA_DST; metric, onlink, TOS and RTAX_MTU/ADVMSS are kept', () => {
    const metrics = Buffer.concat([attr(2, u32(1400)), attr(8, u32(1360))]);
    const msg = Buffer.concat([
      rtmsg({ dstLen: 0, tos: 0x10, proto: 4, flags: 4 /* RTNH_F_ONLINK */ }),
      attr(5, ip4('192.168.9.1')),
      attr(6, u32(100)),
      attr(8, metrics),
      attr(4, u32(2)),
    ]);
    expect(parseRouteMessage(msg, 2)).toEqual({
      family: 4,
      dst: '0.0.0.0/0',
      gateway: '192.168.9.1',
      metric: 100,
      tos: 16,
      onlink: true,
      mtu: 1400,
      advmss: 1360,
      scope: 'universe',
      protocol: 'static',
      type: 'unicast',
      table: 254,
    });
  });

  it('an IPv4 route via an IPv6 gateway (an 18-byte RTA_VIA) is read, not refused', () => {
    const via = Buffer.concat([Buffer.from([10, 0]), hex('fe800000000000000000000000000001')]);
    const msg = Buffer.concat([rtmsg({ dstLen: 16 }), attr(1, ip4('10.84.0.0')), attr(18, via), attr(4, u32(2))]);
    expect(parseRouteMessage(msg, 2)).toMatchObject({ dst: '10.84.0.0/16', via: { family: 6, address: 'fe80::1' } });
    expect(parseRouteMessage(msg, 2)!.gateway).toBeUndefined();
  });

  it('multipath: kept when any nexthop uses the veth; one nexthop reads as a plain route', () => {
    const hop = (ifindex: number, gw: string) => {
      const a = attr(5, ip4(gw));
      const h = Buffer.alloc(8); // struct rtnexthop: len u16, flags u8, hops u8, ifindex i32
      h.writeUInt16LE(8 + a.length, 0);
      h.writeInt32LE(ifindex, 4);
      return Buffer.concat([h, a]);
    };
    const two = Buffer.concat([
      rtmsg({ dstLen: 16 }),
      attr(1, ip4('10.87.0.0')),
      attr(9, Buffer.concat([hop(5, '10.81.0.1'), hop(2, '10.81.0.3')])),
    ]);
    expect(parseRouteMessage(two, 2)).toMatchObject({ dst: '10.87.0.0/16', multipath: true });
    expect(parseRouteMessage(two, 2)!.gateway).toBeUndefined();
    expect(parseRouteMessage(two, 7)).toBeUndefined();
    const one = Buffer.concat([rtmsg({ dstLen: 16 }), attr(1, ip4('10.87.0.0')), attr(9, hop(2, '10.81.0.1'))]);
    expect(parseRouteMessage(one, 2)).toMatchObject({ gateway: '10.81.0.1' });
    expect(parseRouteMessage(one, 2)!.multipath).toBeUndefined();
  });

  it('a table over 255 comes from RTA_TABLE; local-table entries and source prefixes are read', () => {
    const big = Buffer.concat([
      rtmsg({ dstLen: 8, table: 252 }),
      attr(15, u32(1000)),
      attr(1, ip4('10.0.0.0')),
      attr(4, u32(2)),
    ]);
    expect(parseRouteMessage(big, 2)).toMatchObject({ table: 1000 });
    const local = Buffer.concat([
      rtmsg({ dstLen: 32, table: 255, proto: 2, scope: 254, type: 2 }),
      attr(1, ip4('10.0.0.2')),
      attr(4, u32(2)),
    ]);
    expect(parseRouteMessage(local, 2)).toMatchObject({ table: 255, type: 'local', scope: 'host', protocol: 'kernel' });
    const from = Buffer.concat([
      rtmsg({ dstLen: 16, srcLen: 24 }),
      attr(1, ip4('10.9.0.0')),
      attr(2, ip4('10.0.0.0')),
      attr(4, u32(2)),
    ]);
    expect(parseRouteMessage(from, 2)).toMatchObject({ src: '10.0.0.0/24' });
  });

  it('unknown protocol/scope/type numbers stay numbers as text; cloned and short messages are skipped', () => {
    const odd = Buffer.concat([
      rtmsg({ dstLen: 16, proto: 186, scope: 200, type: 10 }),
      attr(1, ip4('10.9.0.0')),
      attr(4, u32(2)),
    ]);
    expect(parseRouteMessage(odd, 2)).toMatchObject({ protocol: '186', scope: 'site', type: '10' });
    const cloned = Buffer.concat([rtmsg({ dstLen: 32, flags: 0x200 }), attr(4, u32(2))]);
    expect(parseRouteMessage(cloned, 2)).toBeUndefined();
    expect(parseRouteMessage(hex('0218'), 2)).toBeUndefined();
  });

  it('an IPv6 route', () => {
    const msg = Buffer.concat([
      rtmsg({ family: 10, dstLen: 64, proto: 2 }),
      attr(1, hex('fe800000000000000000000000000000')),
      attr(6, u32(256)),
      attr(4, u32(2)),
    ]);
    expect(parseRouteMessage(msg, 2)).toMatchObject({ family: 6, dst: 'fe80::/64', metric: 256, protocol: 'kernel' });
  });
});

describe('parseAddrMessage', () => {
  it('"10.77.0.2/24 brd 10.77.0.255 scope global eth0" with IFA_FLAGS', () => {
    const msg = hex(
      `
      02 18 80 00  02000000               # AF_INET, prefixlen 24, ifa_flags permanent, scope universe, index 2
      0800 0100 0a4d0002                  # IFA_ADDRESS 10.77.0.2
      0800 0200 0a4d0002                  # IFA_LOCAL 10.77.0.2
      0800 0400 0a4dffff                  # IFA_BROADCAST 10.77.255.255
      0900 0300 65746830 00000000         # IFA_LABEL "eth0\\0"
      0800 0800 80020000                  # IFA_FLAGS permanent|noprefixroute (0x280)
      1400 0600 ffffffff ffffffff 00000000 00000000  # IFA_CACHEINFO preferred, valid forever
    `.replace(/#.*$/gm, ''),
    );
    expect(parseAddrMessage(msg, 2)).toEqual({
      family: 4,
      address: '10.77.0.2',
      prefixLen: 24,
      scope: 0,
      flags: 0x280,
      broadcast: '10.77.255.255',
      label: 'eth0',
      preferredLft: 0xffffffff,
      validLft: 0xffffffff,
    });
    expect(parseAddrMessage(msg, 3)).toBeUndefined();
  });

  it('a point-to-point peer is IFA_ADDRESS differing from IFA_LOCAL; IPv6 has IFA_ADDRESS only', () => {
    const ifa = (family: number, len: number) => Buffer.from([family, len, 0x80, 0, 2, 0, 0, 0]);
    const ptp = Buffer.concat([ifa(2, 32), attr(1, ip4('10.1.0.1')), attr(2, ip4('10.1.0.2'))]);
    expect(parseAddrMessage(ptp, 2)).toMatchObject({ address: '10.1.0.2', peer: '10.1.0.1', flags: 0x80 });
    const v6 = Buffer.concat([ifa(10, 64), attr(1, hex('fd000000000000000000000000000002'))]);
    expect(parseAddrMessage(v6, 2)).toMatchObject({ family: 6, address: 'fd00::2', prefixLen: 64 });
  });
});
