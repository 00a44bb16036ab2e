// The guest hostname a sandbox gets (issue 14 item 10): the kubelet's rule (config.hostname or
// the pod name, cut to 63 bytes, trailing '-' and '.' trimmed), and every valid pod name - a
// DNS subdomain of up to 253 bytes - yields one the DHCP server accepts as option 12.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/cri/convert';
import { isHostname, podHostname, truncateHostname } from '../../src/cri/hostname';
import { resolveLease } from '../../src/dhcp/lease';

const lease = (hostname: string) => ({
  mac: '02:00:00:00:00:01',
  ip: '10.0.0.2',
  prefixLen: 24,
  routers: [],
  classlessRoutes: [],
  dns: [],
  search: [],
  hostname,
});

/** A random valid pod name: a DNS-1123 subdomain (lower-case alnum and '-', '.'-joined), 1..253 bytes. */
function randomPodName(rand: () => number): string {
  const alnum = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const inner = `${alnum}-`;
  const pick = (s: string): string => s[Math.floor(rand() * s.length)]!;
  const target = 1 + Math.floor(rand() * 253);
  let name = '';
  while (name.length < target) {
    const len = 1 + Math.floor(rand() * Math.min(80, target));
    let label = pick(alnum);
    for (let i = 1; i < len - 1; i++) label += pick(inner);
    if (len > 1) label += pick(alnum);
    const next = name ? `${name}.${label}` : label;
    if (next.length > 253) break;
    name = next;
  }
  return name || 'a';
}

describe('podHostname', () => {
  it('keeps a short name as it is, dots included (the kubelet uses the pod name as the hostname)', () => {
    expect(podHostname(undefined, 'vm1')).toBe('vm1');
    expect(podHostname(undefined, 'web.v1.example')).toBe('web.v1.example');
    expect(podHostname('guest', 'a'.repeat(200))).toBe('guest');
  });

  it('cuts a long name to 63 bytes and trims a trailing "-" or "." as the kubelet does', () => {
    const critest = 'create-PodSandbox-for-container-0f3c1b2a-5d6e-4f70-8a9b-0c1d2e3f4a5b';
    expect(critest.length).toBeGreaterThan(63);
    expect(podHostname('', critest)).toBe(critest.slice(0, 63));
    expect(podHostname(undefined, 'a'.repeat(253))).toBe('a'.repeat(63));
    expect(podHostname(undefined, `${'a'.repeat(62)}-b`)).toBe('a'.repeat(62)); // cut after '-'
    expect(podHostname(undefined, `${'a'.repeat(61)}.bcd`)).toBe(`${'a'.repeat(61)}.b`);
    expect(podHostname(undefined, `${'a'.repeat(62)}.bcd`)).toBe('a'.repeat(62)); // cut after '.'
    expect(podHostname(undefined, `${'a'.repeat(60)}-.-.x`)).toBe('a'.repeat(60));
    expect(truncateHostname('x'.repeat(63))).toBe('x'.repeat(63));
  });

  it('every valid pod name up to 253 bytes gives a hostname the DHCP lease accepts', () => {
    let seed = 14;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 2000; i++) {
      const name = randomPodName(rand);
      const h = podHostname(undefined, name);
      expect(isHostname(h), name).toBe(true);
      expect(Buffer.byteLength(h)).toBeLessThanOrEqual(63);
      expect(() => resolveLease(lease(h))).not.toThrow();
    }
  });

  it('refuses only what no pod name can be, naming the field and the value', () => {
    expect(() => podHostname(undefined, 'my pod')).toThrow(
      'config.metadata.name "my pod" cannot be the guest hostname: a hostname is labels of letters, digits and ' +
        'inner "-" joined by ".", at most 63 bytes (set config.hostname to give one)',
    );
    expect(() => podHostname('under_score', 'vm')).toThrow(/^config\.hostname "under_score" cannot be/);
    expect(() => podHostname(undefined, '-x')).toThrow(/config\.metadata\.name "-x"/);
    expect(() => podHostname(undefined, 'a..b')).toThrow(/config\.metadata\.name "a\.\.b"/);
    let err: unknown;
    try {
      podHostname(undefined, 'é'.repeat(40));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringContaining('éé') });
  });

  it('validateConfig derives the hostname when none is given', () => {
    const meta = { name: 'n'.repeat(100), uid: 'u', namespace: 'ns' };
    expect(validateConfig({ metadata: meta }).hostname).toBe('n'.repeat(63));
    expect(validateConfig({ metadata: meta, hostname: 'h' }).hostname).toBe('h');
  });
});
