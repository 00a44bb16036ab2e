// The fence script: its shape, its counter names, and that no input can inject nft syntax.
import { describe, expect, it } from 'vitest';
import { fenceCounterNames, fenceRuleset, FenceNic } from '../../src/tapmanager/fence';

const NIC: FenceNic = { bridge: 'br0', veth: 'eth0', tap: 'tap0', guestMac: '52:54:00:AA:bb:01' };
const NIC1: FenceNic = { bridge: 'br1', veth: 'net1', tap: 'tap1', guestMac: '0a:58:0a:00:00:05' };

function rules(script: string): string[] {
  return script.split('\n').filter((l) => / drop$/.test(l));
}

/** The trimmed lines of one chain's body. */
function chain(script: string, name: string): string[] {
  const lines = script.split('\n');
  const start = lines.indexOf(`  chain ${name} {`);
  if (start < 0) return [];
  const end = lines.indexOf('  }', start);
  return lines.slice(start + 1, end).map((l) => l.trim());
}

describe('fenceRuleset', () => {
  it('is one transaction: add, flush, then the table with its set, counters, two hooked chains and one chain per NIC and way', () => {
    const s = fenceRuleset('tapwire', [NIC]);
    const lines = s.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'add table bridge tapwire',
      'flush table bridge tapwire',
      'table bridge tapwire {',
      '  set vlan_types { typeof @ll,96,16; elements = { 0x8100, 0x88a8 } }',
    ]);
    expect(lines.filter((l) => l.startsWith('  chain '))).toEqual([
      '  chain prerouting {',
      '  chain postrouting {',
      '  chain nic0_in {',
      '  chain nic0_out {',
    ]);
    expect(rules(s).join('\n')).not.toMatch(/\{ [0-9x]+, /); // no anonymous sets: one named set, ranges for ports
    expect(s).toContain('type filter hook prerouting priority filter; policy accept;');
    expect(s).toContain('type filter hook postrouting priority filter; policy accept;');
    expect(s.endsWith('}\n')).toBe(true);
  });

  it('drops frames from the tap unless they carry the guest MAC (normalized to lower case)', () => {
    const r = rules(fenceRuleset('tapwire', [NIC]));
    expect(r[0]!.trim()).toBe('iifname "tap0" ether saddr != 52:54:00:aa:bb:01 counter name "nic0_spoof" drop');
  });

  it('fences DHCP both ways on the veth: kernel-parsed, untagged, 802.1Q/802.1ad, QinQ, options, 3 tags', () => {
    const s = fenceRuleset('tapwire', [NIC]);
    expect(chain(s, 'prerouting')).toContain('iifname "eth0" jump nic0_in');
    expect(chain(s, 'postrouting')).toEqual([
      'type filter hook postrouting priority filter; policy accept;',
      'oifname "eth0" jump nic0_out',
    ]);
    const inRules = chain(s, 'nic0_in').slice(1);
    const outRules = chain(s, 'nic0_out');
    expect(inRules).toHaveLength(29);
    expect(outRules).toHaveLength(29);
    expect(inRules[0]).toBe('udp dport 67-68 counter name "nic0_in_udp_dport" drop');
    expect(inRules[1]).toBe('udp sport 67 counter name "nic0_in_udp_sport" drop');
    // untagged, option-less IPv4 UDP first fragment, dport at byte 14+20+2 = 36 (bit 288)
    expect(inRules[2]).toBe(
      '@ll,96,16 0x0800 @ll,112,8 0x45 @ll,184,8 17 @ll,163,13 0 @ll,288,16 67-68 counter name "nic0_in_raw_dport" drop',
    );
    // one tag: IP at byte 18, sport at byte 38 (bit 304)
    expect(inRules[5]).toBe(
      '@ll,96,16 @vlan_types @ll,128,16 0x0800 @ll,144,8 0x45 @ll,216,8 17 @ll,195,13 0 ' +
        '@ll,304,16 67 counter name "nic0_in_vlan_sport" drop',
    );
    // two tags: IP at byte 22, dport at byte 44 (bit 352)
    expect(inRules[6]).toContain('@ll,160,16 0x0800 @ll,176,8 0x45 @ll,248,8 17 @ll,227,13 0 @ll,352,16 67-68');
    expect(inRules[8]).toContain(
      '@ll,144,4 4 @ll,148,4 != 5 @ll,216,8 17 @ll,195,13 0 counter name "nic0_in_vlan_ipopt"',
    );
    expect(inRules[10]).toBe(
      '@ll,96,16 @vlan_types @ll,128,16 @vlan_types @ll,160,16 @vlan_types counter name "nic0_in_vlan3" drop',
    );
    expect(outRules.map((l) => l.replace('_out_', '_in_'))).toEqual(inRules);
  });

  it('fences DHCPv6 and router discovery/redirects both ways on the veth, kernel-parsed and at fixed offsets', () => {
    const s = fenceRuleset('tapwire', [NIC]);
    const inRules = chain(s, 'nic0_in').slice(12);
    expect(inRules.slice(0, 4)).toEqual([
      'udp dport 546-547 counter name "nic0_in_udp6_dport" drop',
      'udp sport 547 counter name "nic0_in_udp6_sport" drop',
      'meta l4proto ipv6-icmp @th,0,8 133-134 counter name "nic0_in_icmp6_router" drop',
      'meta l4proto ipv6-icmp @th,0,8 137 counter name "nic0_in_icmp6_redirect" drop',
    ]);
    // untagged: IPv6 at byte 14, next header at byte 20 (bit 160), UDP/ICMPv6 at byte 54 (bit 432)
    expect(inRules[4]).toBe('@ll,96,16 0x86dd @ll,160,8 17 @ll,448,16 546-547 counter name "nic0_in_raw6_dport" drop');
    expect(inRules[6]).toBe('@ll,96,16 0x86dd @ll,160,8 58 @ll,432,8 133-134 counter name "nic0_in_raw6_router" drop');
    // two tags: IPv6 at byte 22, ICMPv6 type at byte 62 (bit 496)
    expect(inRules[15]).toContain('@ll,160,16 0x86dd @ll,224,8 58 @ll,496,8 137 counter name "nic0_in_qinq6_redirect"');
    expect(inRules[16]).toBe(
      '@ll,96,16 @vlan_types @ll,128,16 0x86dd @ll,192,8 != 6 @ll,192,8 != 17 @ll,192,8 != 58 counter name "nic0_in_vlan6_ext" drop',
    );
    // the guest sends no RA or redirect anywhere
    expect(chain(s, 'prerouting')).toEqual(
      expect.arrayContaining([
        'iifname "tap0" meta l4proto ipv6-icmp @th,0,8 134 counter name "nic0_guest_ra" drop',
        'iifname "tap0" meta l4proto ipv6-icmp @th,0,8 137 counter name "nic0_guest_redirect" drop',
      ]),
    );
  });

  it('drops frames from the veth that carry the guest MAC (hairpin reflections), before the bridge learns them', () => {
    const s = fenceRuleset('tapwire', [NIC]);
    expect(chain(s, 'nic0_in')[0]).toBe(
      `ether saddr ${NIC.guestMac.toLowerCase()} counter name "nic0_in_guestmac" drop`,
    );
    expect(chain(s, 'prerouting')).toContain('iifname "eth0" jump nic0_in');
  });

  it('puts inbound rules behind prerouting and outbound rules behind postrouting', () => {
    const s = fenceRuleset('tapwire', [NIC]);
    const pre = chain(s, 'prerouting').join('\n');
    const post = chain(s, 'postrouting').join('\n');
    expect(pre).not.toContain('oifname');
    expect(pre).not.toContain('nic0_out');
    expect(post).not.toContain('iifname');
    expect(post).not.toContain('nic0_in');
  });

  it('names one counter per rule, per NIC, in rule order', () => {
    const s = fenceRuleset('t', [NIC, NIC1]);
    const names = fenceCounterNames([NIC, NIC1]);
    expect(names).toHaveLength(124);
    expect(new Set(names).size).toBe(124);
    expect(names.slice(0, 4)).toEqual(['nic0_spoof', 'nic0_guest_ra', 'nic0_guest_redirect', 'nic0_in_guestmac']);
    expect(names[62]).toBe('nic1_spoof');
    expect(names).toContain('nic1_out_qinq6_router');
    expect(names).toContain('nic1_out_qinq_dport');
    for (const n of names) expect(s).toContain(`  counter ${n} { }`);
    expect(
      rules(s)
        .map((l) => /counter name "([^"]+)"/.exec(l)![1])
        .sort(),
    ).toEqual([...names].sort());
    expect(chain(s, 'prerouting')).toContain('iifname "net1" jump nic1_in');
    expect(chain(s, 'postrouting')).toContain('oifname "net1" jump nic1_out');
    expect(chain(s, 'nic1_in')).toContain('udp dport 67-68 counter name "nic1_in_udp_dport" drop');
    expect(s).toContain('iifname "tap1" ether saddr != 0a:58:0a:00:00:05');
  });

  it('an empty NIC list is an empty fence', () => {
    const s = fenceRuleset('t', []);
    expect(rules(s)).toEqual([]);
    expect(s).not.toContain('jump');
  });

  describe('refuses input that could change the script, naming the field and value', () => {
    const bad: [string, unknown, string][] = [
      ['nics[0].veth', { ...NIC, veth: 'eth0" accept #' }, 'invalid nics[0].veth "eth0\\" accept #"'],
      ['nics[0].veth', { ...NIC, veth: 'eth0\nflush ruleset' }, 'invalid nics[0].veth'],
      ['nics[0].tap', { ...NIC, tap: 'a234567890123456' }, 'invalid nics[0].tap "a234567890123456"'],
      ['nics[0].tap', { ...NIC, tap: '' }, 'invalid nics[0].tap ""'],
      ['nics[0].bridge', { ...NIC, bridge: '..' }, 'invalid nics[0].bridge ".."'],
      ['nics[0].bridge', { ...NIC, bridge: 'bré' }, 'invalid nics[0].bridge'],
      ['nics[0].guestMac', { ...NIC, guestMac: '52:54:00:aa:bb:01 accept' }, 'invalid nics[0].guestMac'],
      ['nics[0].guestMac', { ...NIC, guestMac: '53:54:00:aa:bb:01' }, 'unicast'],
      ['nics[0].guestMac', { ...NIC, guestMac: '00:00:00:00:00:00' }, 'all zeros'],
      ['nics[0].guestMac', { ...NIC, guestMac: 7 }, 'invalid nics[0].guestMac 7'],
      ['nics[0]', null, 'invalid nics[0] null'],
    ];
    for (const [field, nic, msg] of bad) {
      it(`${field}: ${JSON.stringify(nic)}`, () => {
        let err: unknown;
        try {
          fenceRuleset('tapwire', [nic as FenceNic]);
        } catch (e) {
          err = e;
        }
        expect(err).toMatchObject({ code: 'EINVAL', field });
        expect((err as Error).message).toContain(msg);
      });
    }

    it('table', () => {
      for (const t of ['', 'tap wire', 'x;flush ruleset', '1abc', 'a'.repeat(33), 'ta-p']) {
        expect(() => fenceRuleset(t, [NIC])).toThrow(expect.objectContaining({ code: 'EINVAL', field: 'table' }));
      }
    });

    it('nics that reuse an interface', () => {
      expect(() => fenceRuleset('t', [NIC, { ...NIC1, tap: 'eth0' }])).toThrow(
        'invalid nics[1].tap "eth0": already used as nics[0].veth',
      );
      expect(() => fenceRuleset('t', [{ ...NIC, bridge: 'tap0' }])).toThrow('invalid nics[0].bridge "tap0"');
      expect(() => fenceRuleset('t', 'eth0' as unknown as FenceNic[])).toThrow('invalid nics "eth0"');
    });
  });
});
