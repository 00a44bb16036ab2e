// Router Advertisement bytes (RFC 4861 4.2, 4.6; RFC 8106 5) and Router Solicitation checks (6.1.1).
import { expect, it } from 'vitest';
import { encodeRouterAdvert, isValidRouterSolicit, maskPrefix6 } from '../../src/ndp/messages';

it('encodes the header flags, lifetime, MTU, on-link prefix (L, no A), RDNSS and DNSSL', () => {
  const b = encodeRouterAdvert({
    routerLifetime: 1800,
    managed: true,
    other: true,
    mtu: 1450,
    onLink: [{ prefix: 'fd00:77::5', prefixLen: 64 }],
    optionLifetime: 1800,
    dns: ['fd00:96::a'],
    search: ['cluster.local'],
  });
  expect([b[0], b[1], b[4], b[5], b.readUInt16BE(6)]).toEqual([134, 0, 64, 0xc0, 1800]);
  const opts: [number, Buffer][] = [];
  for (let p = 16; p < b.length; p += b[p + 1]! * 8) opts.push([b[p]!, b.subarray(p, p + b[p + 1]! * 8)]);
  expect(opts.map(([t]) => t)).toEqual([5, 3, 25, 31]);
  expect(opts[0]![1].readUInt32BE(4)).toBe(1450);
  const pio = opts[1]![1];
  expect([pio[2], pio[3]]).toEqual([64, 0x80]);
  expect(pio.subarray(16, 32).toString('hex')).toBe('fd000077000000000000000000000000');
  expect(opts[2]![1].subarray(8).toString('hex')).toBe('fd00009600000000000000000000000a');
  const dnssl = opts[3]![1];
  expect(dnssl.length % 8).toBe(0);
  expect(dnssl.subarray(8, 23).toString('latin1')).toBe('\x07cluster\x05local\x00');
});

it('omits the MTU, prefixes, RDNSS and DNSSL when there are none, and masks prefixes', () => {
  const b = encodeRouterAdvert({
    routerLifetime: 0,
    managed: false,
    other: false,
    onLink: [],
    optionLifetime: 0,
    dns: [],
    search: [],
  });
  expect(b.length).toBe(16);
  expect(maskPrefix6('fd00:1:2:3::ffff', 52).toString('hex')).toBe('fd000001000200000000000000000000');
});

it('accepts only solicitations with hop limit 255, code 0 and well-formed options', () => {
  const rs = Buffer.from([133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 1]);
  expect(isValidRouterSolicit(rs, 'fe80::2', 255)).toBe(true);
  expect(isValidRouterSolicit(rs, 'fe80::2', 64)).toBe(false);
  expect(isValidRouterSolicit(rs, '::', 255)).toBe(false); // SLLA from the unspecified address
  expect(isValidRouterSolicit(Buffer.from([133, 1, 0, 0, 0, 0, 0, 0]), 'fe80::2', 255)).toBe(false);
  expect(isValidRouterSolicit(Buffer.from([133, 0, 0, 0, 0, 0, 0, 0, 1, 0]), 'fe80::2', 255)).toBe(false);
  expect(isValidRouterSolicit(Buffer.from([133, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0]), 'fe80::2', 255)).toBe(false);
});
