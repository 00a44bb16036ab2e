import { describe, expect, it } from 'vitest';
import { parseCidr } from '../../src/net/addr-text';
import {
  contains,
  formatIpv4,
  ip4ToNum,
  isIpv4,
  isNetworkAddress,
  maskFromPrefix,
  parseCidr4,
  parsePrefix4,
  prefixFromMask,
  prefixText,
} from '../../src/net/ipv4';

describe('IPv4: one prefix module', () => {
  it('addresses: four octets, no leading zeros', () => {
    expect(ip4ToNum('10.0.0.1')).toBe(0x0a000001);
    expect(ip4ToNum('255.255.255.255')).toBe(0xffffffff);
    for (const bad of ['010.0.0.1', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1.2.3.4 ', '::1', '', 7]) {
      expect(ip4ToNum(bad), String(bad)).toBeUndefined();
      expect(isIpv4(bad)).toBe(false);
    }
    expect(formatIpv4(0xc0a80101)).toBe('192.168.1.1');
  });

  it('masks and prefix lengths', () => {
    expect(maskFromPrefix(0)).toBe(0);
    expect(maskFromPrefix(24)).toBe(0xffffff00);
    expect(maskFromPrefix(32)).toBe(0xffffffff);
    expect(prefixFromMask(0xffffff00)).toBe(24);
    expect(prefixFromMask(0xff00ff00)).toBe(-1);
  });

  it('a.b.c.d/len', () => {
    expect(parseCidr4('10.1.2.3/8')).toEqual({ ip: '10.1.2.3', len: 8 });
    expect(parseCidr4('10.1.2.3/33')).toBeUndefined();
    expect(parseCidr4('10.1.2.3/008')).toBeUndefined();
    expect(parseCidr4('10.1.2.3')).toBeUndefined();
    expect(parseCidr4('10.1.2.3/8/1')).toBeUndefined();
    expect(parseCidr4('fd00::1/64')).toBeUndefined();
    expect(parseCidr4(undefined)).toBeUndefined();
    const p = parsePrefix4('10.1.2.3/8')!;
    expect(prefixText(p)).toBe('10.0.0.0/8');
    expect(contains(p, '10.255.0.1')).toBe(true);
    expect(contains(p, '11.0.0.1')).toBe(false);
    expect(isNetworkAddress('10.0.0.0', 8)).toBe(true);
    expect(isNetworkAddress('10.0.0.1', 8)).toBe(false);
    expect(isNetworkAddress('0.0.0.0', 0)).toBe(true);
  });
});

describe('parseCidr (addr-text.ts: the one prefix parser)', () => {
  it('reads either family, keeps the host part, and refuses anything else', () => {
    expect(parseCidr('10.1.2.3/24')).toEqual({ family: 4, ip: '10.1.2.3', len: 24 });
    expect(parseCidr('fd00::1/64')).toEqual({ family: 6, ip: 'fd00::1', len: 64 });
    expect(parseCidr('0.0.0.0/0')).toEqual({ family: 4, ip: '0.0.0.0', len: 0 });
    expect(parseCidr('::/128')).toEqual({ family: 6, ip: '::', len: 128 });
    for (const bad of [
      '10.1.2.3',
      '10.1.2.3/33',
      '::/129',
      '10.1.2.3/',
      '/24',
      '10.1.2.3/2/4',
      '10.1.2.3/+4',
      '10.1.2.3/024',
      'x/8',
      '01.2.3.4/8',
      5,
      undefined,
    ])
      expect(parseCidr(bad), String(bad)).toBeUndefined();
    expect(parseCidr4('fd00::1/64')).toBeUndefined();
    expect(parseCidr4('10.1.2.3/8')).toEqual({ ip: '10.1.2.3', len: 8 });
  });
});
