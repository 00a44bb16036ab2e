import { describe, expect, it } from 'vitest';
import { newCounters } from '../../src/dhcp/counters';
import { newCounters6 } from '../../src/dhcp6/counters';
import { errnoLabel, parseMetricsAddress, TapwireMetrics, type SandboxSource } from '../../src/tapmanager/metrics';
import { fenceReason, fenceRule } from '../../src/tapmanager/metrics/fence';
import type { ListEntry } from '../../src/tapmanager/protocol';

function source(sandboxes: { id: string; state?: string; ack: number; drops: number }[]): SandboxSource {
  return {
    list: () =>
      sandboxes.map((s): ListEntry => ({
        sandboxId: s.id,
        state: s.state ?? 'ready',
        netnsPath: '/x',
        ips: [],
        createdAt: '',
      })),
    counters: () =>
      Promise.resolve(
        new Map(
          sandboxes
            .filter((s) => (s.state ?? 'ready') === 'ready')
            .map((s) => [
              s.id,
              {
                dhcp: [{ ...newCounters(), received: s.ack * 2, ack: s.ack }],
                ipv6: [],
                fence: [{ name: 'nic0_in_udp_dport', packets: s.drops, bytes: 0 }],
                drifted: false,
              },
            ]),
        ),
      ),
  };
}

const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('--metrics-address', () => {
  it('takes HOST:PORT and [V6]:PORT, and names the flag and value otherwise', () => {
    expect(parseMetricsAddress('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseMetricsAddress('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parseMetricsAddress('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    for (const bad of [':9464', '9464', '127.0.0.1', '127.0.0.1:65536', '[zz]:1', '::1:9464', ''])
      expect(() => parseMetricsAddress(bad)).toThrow(`invalid --metrics-address ${JSON.stringify(bad)}`);
  });
});

describe('metric labels', () => {
  it('errno labels come from a fixed shape; fence counters map to bounded rules and reasons', () => {
    expect(errnoLabel({ code: 'EINVAL' })).toBe('EINVAL');
    expect(errnoLabel({ code: 'ERR_SOMETHING_LONG_AND_NODE' })).toBe('other');
    expect(errnoLabel(new Error('x'))).toBe('other');
    expect(fenceRule('nic12_out_vlan_dport')).toBe('out_vlan_dport');
    expect(fenceReason('nic0_spoof')).toBe('spoofed_source');
    expect(fenceReason('nic1_in_guestmac')).toBe('guest_mac_from_pod');
    expect(fenceReason('nic1_in_qinq_sport')).toBe('dhcp_from_pod');
    expect(fenceReason('nic0_out_udp_dport')).toBe('dhcp_to_pod');
    expect(fenceReason('nic0_in_raw6_dport')).toBe('dhcp_from_pod');
    expect(fenceReason('nic0_in_raw6_router')).toBe('router_from_pod');
    expect(fenceReason('nic2_out_vlan6_redirect')).toBe('router_to_pod');
    expect(fenceReason('nic0_guest_ra')).toBe('router_from_guest');
  });
});

describe('TapwireMetrics', () => {
  it('keeps the counts of sandboxes that are gone in the node-wide totals, and caps per-sandbox series', async () => {
    const m = new TapwireMetrics({ maxSandboxSeries: 1 });
    const list = [
      { id: 'a', ack: 1, drops: 3 },
      { id: 'b', ack: 2, drops: 0 },
    ];
    m.attach(source(list));
    let text = await m.text();
    expect(value(text, 'tapwire_dhcp_replies_total{type="ack"}')).toBe(3);
    expect(value(text, 'tapwire_fence_dropped_packets_total{rule="in_udp_dport"}')).toBe(3);
    expect(value(text, 'tapwire_sandbox_dhcp_messages_total{sandbox="a",type="ack"}')).toBe(1);
    expect(text).not.toContain('sandbox="b"');
    expect(value(text, 'tapwire_metrics_sandboxes_without_series')).toBe(1);
    expect(value(text, 'tapwire_sandboxes{state="ready"}')).toBe(2);
    // b is being torn down (its DHCP servers stopped): its last counts stand
    list[1] = { id: 'b', state: 'tearing-down', ack: 0, drops: 0 } as (typeof list)[0];
    text = await m.text();
    expect(value(text, 'tapwire_dhcp_replies_total{type="ack"}')).toBe(3);
    list.splice(0, 2);
    text = await m.text();
    expect(value(text, 'tapwire_dhcp_replies_total{type="ack"}')).toBe(3);
    expect(value(text, 'tapwire_sandboxes{state="ready"}')).toBe(0);
  });

  it('sums the DHCPv6 and router advertisement counters of every IPv6 NIC, by type, status, reason and outcome', async () => {
    const m = new TapwireMetrics();
    const nic = (solicit: number, reply: number, answered: number) => ({
      dhcp6: { ...newCounters6(), received: solicit + reply + 1, solicit, request: reply, advertise: solicit, reply },
      ra: {
        solicitations: answered + 1,
        invalid: 2,
        answered,
        rateLimited: 1,
        sent: answered + 3,
        sendErrors: 0,
        router: 'fe80::1',
        mtu: 1500,
        onLink: [],
      },
    });
    const ids = ['v6', 'v4'];
    m.attach({
      list: () => ids.map((id) => ({ sandboxId: id, state: 'ready', netnsPath: '/x', ips: [], createdAt: '' })),
      counters: () =>
        Promise.resolve(
          new Map(
            ids.map((id) => [
              id,
              {
                dhcp: [],
                ipv6:
                  id === 'v6'
                    ? [nic(2, 3, 4), { ...nic(1, 1, 1), dhcp6: { ...nic(1, 1, 1).dhcp6, noBinding: 2, relay: 5 } }]
                    : [],
                fence: [],
                drifted: false,
              },
            ]),
          ),
        ),
    });
    const text = await m.text();
    expect(value(text, 'tapwire_dhcp6_received_total{type="solicit"}')).toBe(3);
    expect(value(text, 'tapwire_dhcp6_received_total{type="request"}')).toBe(4);
    expect(value(text, 'tapwire_dhcp6_received_total{type="information_request"}')).toBe(0);
    expect(value(text, 'tapwire_dhcp6_replies_total{type="advertise"}')).toBe(3);
    expect(value(text, 'tapwire_dhcp6_replies_total{type="reply"}')).toBe(4);
    expect(value(text, 'tapwire_dhcp6_status_codes_total{status="no_binding"}')).toBe(2);
    expect(value(text, 'tapwire_dhcp6_ignored_total{reason="relay"}')).toBe(5);
    expect(value(text, 'tapwire_dhcp6_faults_total{kind="send_error"}')).toBe(0);
    expect(value(text, 'tapwire_router_solicitations_total{outcome="answered"}')).toBe(5);
    expect(value(text, 'tapwire_router_solicitations_total{outcome="rate_limited"}')).toBe(2);
    expect(value(text, 'tapwire_router_solicitations_total{outcome="invalid"}')).toBe(4);
    expect(value(text, 'tapwire_router_advertisements_total{outcome="sent"}')).toBe(11);
    expect(value(text, 'tapwire_sandbox_dhcp6_messages_total{sandbox="v6",type="reply"}')).toBe(4);
    expect(value(text, 'tapwire_sandbox_dhcp6_messages_total{sandbox="v6",type="ignored"}')).toBe(5);
    expect(value(text, 'tapwire_sandbox_dhcp6_messages_total{sandbox="v6",type="router_advertisements"}')).toBe(11);
    // a sandbox without IPv6 has no DHCPv6 series of its own
    expect(text).not.toContain('tapwire_sandbox_dhcp6_messages_total{sandbox="v4"');
  });

  it('counts a failed setup by the step it failed in and its errno', async () => {
    const m = new TapwireMetrics();
    const fail = (code: string) => Promise.reject(Object.assign(new Error('x'), { code }));
    await expect(m.observe('setup', 's1', () => fail('EINVAL'))).rejects.toThrow();
    await expect(
      m.observe('setup', 's2', async () => {
        m.stepReached('setup.planned', 's2');
        m.stepReached('setup.recorded', 's2');
        return fail('EPERM');
      }),
    ).rejects.toThrow();
    await m.observe('teardown', 's3', () => Promise.resolve({ errors: ['remove fence: x'] }));
    await m.observe('setup', 's4', () => Promise.resolve({}));
    m.recoveryFailed('repair_fence', Object.assign(new Error('x'), { code: 'EPERM' }));
    m.recoveryFailed('repair_fence', new Error('a bug'));
    const text = await m.text();
    expect(value(text, 'tapwire_recovery_errors_total{step="repair_fence",errno="EPERM"}')).toBe(1);
    expect(value(text, 'tapwire_recovery_errors_total{step="repair_fence",errno="other"}')).toBe(1);
    expect(value(text, 'tapwire_operation_errors_total{op="setup",step="plan",errno="EINVAL"}')).toBe(1);
    expect(value(text, 'tapwire_operation_errors_total{op="setup",step="links_and_fence",errno="EPERM"}')).toBe(1);
    expect(value(text, 'tapwire_operation_errors_total{op="teardown",step="unbuild",errno="EIO"}')).toBe(1);
    expect(value(text, 'tapwire_operation_duration_seconds_count{op="setup",outcome="ok"}')).toBe(1);
    expect(value(text, 'tapwire_operation_duration_seconds_count{op="setup",outcome="error"}')).toBe(2);
  });
});

describe('TapwireMetrics scrape deadline', () => {
  it('a read that does not finish does not hold the scrape, and no second read starts meanwhile', async () => {
    const m = new TapwireMetrics({ readTimeoutMs: 50 });
    let reads = 0;
    const s = source([{ id: 'a', ack: 1, drops: 1 }]);
    m.attach({ list: s.list, counters: () => (reads++, new Promise(() => undefined)) });
    const text = await m.text(); // (a scrape held by the read would time the test out)
    expect(value(text, 'tapwire_sandboxes{state="ready"}')).toBe(1);
    await m.text();
    expect(reads).toBe(1);
  });
});
