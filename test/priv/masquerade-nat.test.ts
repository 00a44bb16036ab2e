// The masquerade NAT tables as tapwire's one netlink batch (nat.ts) against the same
// tables written as an nft script (from the same rules' text) in another netns: the
// kernel lists both the same, for all ports and for listed ports and ranges, IPv4 alone
// and IPv4 + IPv6 (ip and ip6 tables in one batch, each with its comment). Applying the
// batch twice leaves one copy; removing it leaves nothing.
import { afterEach, expect, it } from 'vitest';
import {
  applyNat,
  natExists,
  natRules,
  natRuleText,
  natComment,
  natFamilies,
  removeNat,
  type MasqNat,
} from '../../src/tapmanager/bindings/masquerade/nat';
import { createNetns, removeAllNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

const HOOKS = {
  prerouting: 'type nat hook prerouting priority -100',
  output: 'type nat hook output priority -100',
  postrouting: 'type nat hook postrouting priority 100',
  forward: 'type filter hook forward priority 0',
} as const;

function script(table: string, nats: MasqNat[]): string {
  return nats.map((n) => script1(table, n)).join('');
}

function script1(table: string, n: MasqNat): string {
  const rules = natRules(n);
  const chains = (Object.keys(HOOKS) as (keyof typeof HOOKS)[]).map((c) => {
    const body = rules.filter((r) => r.chain === c).map((r) => `    ${natRuleText(r).slice(c.length + 2)}`);
    return [`  chain ${c} {`, `    ${HOOKS[c]}; policy accept;`, ...body, '  }'].join('\n');
  });
  const comment = n.comment !== undefined ? `  comment "${n.comment}"\n` : '';
  return `table ${n.family === 6 ? 'ip6' : 'ip'} ${table} {\n${comment}${chains.join('\n')}\n}\n`;
}

describePrivileged('masquerade NAT batch vs nft', () => {
  afterEach(() => removeAllNetns());

  const base = { podInterface: 'eth0', bridge: 'br0', guestIp: '10.0.2.2', gatewayIp: '10.0.2.1' };
  const base6 = { ...base, family: 6 as const, guestIp: 'fd10:0:2::2', gatewayIp: 'fd10:0:2::1' };
  for (const [what, ports, dual] of [
    ['all ports', []],
    [
      'listed ports and ranges',
      [
        { protocol: 'TCP', port: 22 },
        { protocol: 'UDP', port: 5000, endPort: 5010 },
        { protocol: 'TCP', port: 65535 },
      ],
      false,
    ],
    ['dual-stack, all ports', [], true],
    [
      'dual-stack, listed ports and ranges',
      [
        { protocol: 'TCP', port: 22 },
        { protocol: 'UDP', port: 5000, endPort: 5010 },
      ],
      true,
    ],
  ] as const) {
    it(`${what}: the kernel holds the same table either way`, async () => {
      const n: MasqNat[] = dual
        ? [
            { ...base, ports, comment: 'tapwire ip_forward=0' },
            { ...base6, ports, comment: 'tapwire forwarding all=0 default=0' },
          ]
        : [{ ...base, ports }];
      const a = createNetns('nata');
      const b = createNetns('natb');
      await applyNat(a.path, 'tapwire_masq_br0', n);
      await applyNat(a.path, 'tapwire_masq_br0', n); // flushed and rewritten, not doubled
      b.exec('nft', ['-f', '-'], script('tapwire_masq_br0', n));
      const list = a.exec('nft', ['list', 'ruleset']);
      expect(list).toBe(b.exec('nft', ['list', 'ruleset']));
      expect(list.match(/dnat to/g)).toHaveLength((ports.length ? ports.length : 1) * (dual ? 3 : 2));
      expect(await natExists(a.path, 'tapwire_masq_br0')).toBe(true);
      expect(await natFamilies(a.path, 'tapwire_masq_br0')).toEqual(dual ? [4, 6] : [4]);
      if (dual) {
        expect(list).not.toContain('::1'); // no IPv6 loopback rules (nat.ts says why)
        expect(await natComment(a.path, 'tapwire_masq_br0', 6)).toBe('tapwire forwarding all=0 default=0');
        expect(await natComment(a.path, 'tapwire_masq_br0', 4)).toBe('tapwire ip_forward=0');
      }
      await removeNat(a.path, 'tapwire_masq_br0');
      await removeNat(a.path, 'tapwire_masq_br0'); // gone already: done
      expect(a.exec('nft', ['list', 'ruleset'])).toBe('');
      expect(await natExists(a.path, 'tapwire_masq_br0')).toBe(false);
    });
  }
});
