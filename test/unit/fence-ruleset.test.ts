// The fence script: its shape, its counter names, and that no input can inject nft syntax.
import { describe, expect, it } from 'vitest';
import { fenceCounterNames, fenceRuleset, FenceNic } from '../../src/tapmanager/fence';

const NIC: FenceNic = { bridge: 'br0', veth: 'eth0', tap: 'tap0', guestMac: '52:54:00:AA:bb:01' };
const NIC1: FenceNic = { bridge: 'br1', veth: 'net1', tap: 'tap1', guestMac: '0a:58:0a:00:00:05' };

function rules(script: string): string[] {
  return script.split('\n').filter((l) => / drop$/.test(l));
}

describe('fenceRuleset', () => {
  it('is one transaction: add, flush, then the table with its counters and two hooked chains', () => {
    const s = fenceRuleset('tapwire', [NIC]);
    const lines = s.split('\n');
    expect(lines.slice(0, 3)).toEqual([
      'add table bridge tapwire',
      'flush table bridge tapwire',
      'table bridge tapwire {',
    ]);
    expect(s).toContain('type filter hook prerouting priority filter; policy accept;');
    expect(s).toContain('type filter hook postrouting priority filter; policy accept;');
    expect(s.endsWith('}\n')).toBe(true);
  });

  it('drops frames from the tap unless they carry the guest MAC (normalized to lower case)', () => {
    const r = rules(fenceRuleset('tapwire', [NIC]));
    expect(r[0]!.trim()).toBe('iifname "tap0" ether saddr != 52:54:00:aa:bb:01 counter name "nic0_spoof" drop');
  });

  it('fences DHCP both ways on the veth: kernel-parsed, untagged, 802.1Q/802.1ad, QinQ, options, 3 tags', () => {
    const r = rules(fenceRuleset('tapwire', [NIC])).map((l) => l.trim());
    const inRules = r.filter((l) => l.startsWith('iifname "eth0"') && !l.includes('ether saddr'));
    const outRules = r.filter((l) => l.startsWith('oifname "eth0"'));
    expect(inRules).toHaveLength(11);
    expect(outRules).toHaveLength(11);
    expect(inRules[0]).toBe('iifname "eth0" udp dport { 67, 68 } counter name "nic0_in_udp_dport" drop');
    expect(inRules[1]).toBe('iifname "eth0" udp sport 67 counter name "nic0_in_udp_sport" drop');
    // untagged, option-less IPv4 UDP first fragment, dport at byte 14+20+2 = 36 (bit 288)
    expect(inRules[2]).toBe(
      'iifname "eth0" @ll,96,16 0x0800 @ll,112,8 0x45 @ll,184,8 17 @ll,163,13 0 @ll,288,16 { 67, 68 } ' +
        'counter name "nic0_in_raw_dport" drop',
    );
    // one tag: IP at byte 18, sport at byte 38 (bit 304)
    expect(inRules[5]).toBe(
      'iifname "eth0" @ll,96,16 { 0x8100, 0x88a8 } @ll,128,16 0x0800 @ll,144,8 0x45 @ll,216,8 17 @ll,195,13 0 ' +
        '@ll,304,16 67 counter name "nic0_in_vlan_sport" drop',
    );
    // two tags: IP at byte 22, dport at byte 44 (bit 352)
    expect(inRules[6]).toContain('@ll,160,16 0x0800 @ll,176,8 0x45 @ll,248,8 17 @ll,227,13 0 @ll,352,16 { 67, 68 }');
    expect(inRules[8]).toContain(
      '@ll,144,4 4 @ll,148,4 != 5 @ll,216,8 17 @ll,195,13 0 counter name "nic0_in_vlan_ipopt"',
    );
    expect(inRules[10]).toContain('@ll,160,16 { 0x8100, 0x88a8 } counter name "nic0_in_vlan3" drop');
    expect(outRules.map((l) => l.replace('oifname', 'iifname').replace('_out_', '_in_'))).toEqual(inRules);
  });

  it('drops frames from the veth that carry the guest MAC (hairpin reflections), before the bridge learns them', () => {
    const s = fenceRuleset('tapwire', [NIC]);
    const pre = s.split('chain postrouting')[0]!;
    const r = rules(pre).map((l) => l.trim());
    expect(r[1]).toBe(`iifname "eth0" ether saddr ${NIC.guestMac.toLowerCase()} counter name "nic0_in_guestmac" drop`);
  });

  it('puts inbound rules in prerouting and outbound rules in postrouting', () => {
    const s = fenceRuleset('tapwire', [NIC]);
    const [pre, post] = s.split('chain postrouting');
    expect(pre).not.toContain('oifname');
    expect(post).not.toContain('iifname');
  });

  it('names one counter per rule, per NIC, in rule order', () => {
    const s = fenceRuleset('t', [NIC, NIC1]);
    const names = fenceCounterNames([NIC, NIC1]);
    expect(names).toHaveLength(48);
    expect(new Set(names).size).toBe(48);
    expect(names[0]).toBe('nic0_spoof');
    expect(names[1]).toBe('nic0_in_guestmac');
    expect(names[24]).toBe('nic1_spoof');
    expect(names).toContain('nic1_out_qinq_dport');
    for (const n of names) expect(s).toContain(`  counter ${n} { }`);
    expect(
      rules(s)
        .map((l) => /counter name "([^"]+)"/.exec(l)![1])
        .sort(),
    ).toEqual([...names].sort());
    expect(s).toContain('iifname "net1" udp dport');
    expect(s).toContain('iifname "tap1" ether saddr != 0a:58:0a:00:00:05');
  });

  it('an empty NIC list is an empty fence', () => {
    expect(rules(fenceRuleset('t', []))).toEqual([]);
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
