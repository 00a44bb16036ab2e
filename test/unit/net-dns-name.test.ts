import { describe, expect, it } from 'vitest';
import { dnsNameRule, isDnsLabel, isDnsName } from '../../src/net/dns-name';
import { isDhcpName } from '../../src/dhcp/lease';
import { isHostname } from '../../src/cri/hostname';

describe('DNS names: one rule (RFC 1123)', () => {
  it('labels: 1-63 letters, digits and inner "-"', () => {
    expect(isDnsLabel('a')).toBe(true);
    expect(isDnsLabel('a-b')).toBe(true);
    expect(isDnsLabel('123')).toBe(true);
    expect(isDnsLabel('x'.repeat(63))).toBe(true);
    expect(isDnsLabel('x'.repeat(64))).toBe(false);
    expect(isDnsLabel('')).toBe(false);
    expect(isDnsLabel('-a')).toBe(false);
    expect(isDnsLabel('a-')).toBe(false);
    expect(isDnsLabel('-')).toBe(false);
    expect(isDnsLabel('a_b')).toBe(false);
    expect(isDnsLabel('a_b', true)).toBe(true);
    expect(isDnsLabel('_svc', true)).toBe(true);
    expect(isDnsLabel('a-', true)).toBe(false);
  });

  it('names: at most 253 characters, an optional root dot only when allowed', () => {
    const l63 = 'x'.repeat(63);
    const n253 = [l63, l63, l63, 'y'.repeat(61)].join('.');
    expect(n253.length).toBe(253);
    expect(isDnsName(n253)).toBe(true);
    expect(isDnsName(`${n253}z`)).toBe(false);
    expect(isDnsName(`${n253}.`, { rootDot: true })).toBe(true);
    expect(isDnsName('cluster.local.')).toBe(false);
    expect(isDnsName('cluster.local.', { rootDot: true })).toBe(true);
    expect(isDnsName('.', { rootDot: true })).toBe(false);
    expect(isDnsName('a..b')).toBe(false);
    expect(isDnsName('.a')).toBe(false);
    expect(isDnsName('10.0.0.1')).toBe(true);
    expect(isDnsName('a.b-.c')).toBe(false);
    expect(isDnsName('a.-b.c')).toBe(false);
    expect(isDnsName('my_svc.local')).toBe(false);
    expect(isDnsName('my_svc.local', { underscore: true })).toBe(true);
    expect(isDnsName('a'.repeat(64), { maxLength: 63 })).toBe(false);
    expect(isDnsName('a.b'.repeat(21), { maxLength: 63 })).toBe(true);
    expect(isDnsName('a', { maxLength: 1000 })).toBe(true);
    expect(isDnsName(3)).toBe(false);
    expect(isDnsName('')).toBe(false);
    expect(isDnsName('é.example')).toBe(false);
  });

  it('the DHCP name and the CRI hostname agree on the trailing "-"', () => {
    expect(isDhcpName('host-')).toBe(false);
    expect(isDhcpName('a.host-.b')).toBe(false);
    expect(isHostname('host-')).toBe(false);
    expect(isDhcpName('_host.example.')).toBe(true);
    expect(isHostname('_host')).toBe(false);
    expect(isHostname('x'.repeat(64))).toBe(false);
  });

  it('says the rule in words', () => {
    expect(dnsNameRule({ maxLength: 63 })).toMatch(/inner "-".*at most 63/);
  });
});
