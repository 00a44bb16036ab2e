import { describe, expect, it } from 'vitest';
import { isMac, isUnicastMac, macFromBuffer, macNumber, macToBuffer, parseMac, randomMac } from '../../src/net/mac';
import { checkNic } from '../../src/vmwrapper/args';
import { resolveLease } from '../../src/dhcp/lease';

describe('MAC addresses: one parser', () => {
  it('takes colons or dashes, either case, and gives lower case with colons', () => {
    expect(parseMac('de:ad:00:00:be:af')).toBe('de:ad:00:00:be:af');
    expect(parseMac('DE-AD-00-00-BE-AF')).toBe('de:ad:00:00:be:af');
    expect(parseMac('De:Ad:00:00:bE:aF')).toBe('de:ad:00:00:be:af');
  });

  it('refuses everything else', () => {
    for (const bad of [
      'zz:00',
      'de:ad:00:00:be',
      'de:ad:00:00:be:af:01',
      'de:ad-00:00:be:af',
      'dead.0000.beaf',
      'deadbeefcafe',
      ' de:ad:00:00:be:af',
      'de:ad:00:00:be:af\n',
      'g0:ad:00:00:be:af',
      '',
      5,
      undefined,
    ]) {
      expect(parseMac(bad), String(bad)).toBeUndefined();
      expect(isMac(bad)).toBe(false);
    }
  });

  it('bytes both ways', () => {
    expect([...macToBuffer('DE-AD-00-00-BE-AF')]).toEqual([0xde, 0xad, 0, 0, 0xbe, 0xaf]);
    expect(macFromBuffer(Buffer.from([0xde, 0xad, 0, 0, 0xbe, 0xaf]))).toBe('de:ad:00:00:be:af');
    expect(() => macToBuffer('nope')).toThrow(TypeError);
  });

  it('a MAC as one 48-bit number: distinct for distinct bytes, exact at the extremes', () => {
    expect(macNumber(Buffer.from([0, 0, 0, 0, 0, 0]))).toBe(0);
    expect(macNumber(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBe(2 ** 48 - 1);
    expect(macNumber(Buffer.from([9, 0xde, 0xad, 0, 0, 0xbe, 0xaf]), 1)).toBe(0xdead0000beaf);
    expect(macNumber(Buffer.from([0x80, 0, 0, 0, 0, 0]))).toBe(2 ** 47);
    expect(macNumber(Buffer.from([0, 0, 0x80, 0, 0, 0]))).toBe(2 ** 31);
  });

  it('unicast and random', () => {
    expect(isUnicastMac('02:00:00:00:00:01')).toBe(true);
    expect(isUnicastMac('01:00:5e:00:00:01')).toBe(false);
    expect(isUnicastMac('00:00:00:00:00:00')).toBe(false);
    const m = randomMac(() => Buffer.from([0xff, 1, 2, 3, 4, 5]));
    expect(m).toBe('fe:01:02:03:04:05');
  });

  it('the layers that take a MAC take both forms and hand on the canonical one', () => {
    expect(checkNic({ mac: 'DE-AD-00-00-BE-AF', model: 'virtio-net-pci', queues: 1 }, 0).mac).toBe('de:ad:00:00:be:af');
    const lease = resolveLease({
      mac: 'DE-AD-00-00-BE-AF',
      ip: '10.0.0.2',
      prefixLen: 24,
      routers: [],
      classlessRoutes: [],
      dns: [],
      search: [],
    });
    expect(lease.mac).toBe('de:ad:00:00:be:af');
  });
});
