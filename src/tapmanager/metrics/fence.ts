// Fence counter names (fence/ruleset.ts: nic<i>_spoof, nic<i>_in_<match>, nic<i>_out_<match>)
// as labels: node-wide by rule with the NIC index left out (a fixed set of about 24), per
// sandbox by the four reasons a frame is dropped.
export function fenceRule(counter: string): string {
  return counter.replace(/^nic\d+_/, '');
}

export type FenceReason = 'spoofed_source' | 'guest_mac_from_pod' | 'dhcp_from_pod' | 'dhcp_to_pod';

export function fenceReason(counter: string): FenceReason {
  const rule = fenceRule(counter);
  if (rule === 'spoof') return 'spoofed_source';
  if (rule === 'in_guestmac') return 'guest_mac_from_pod';
  return rule.startsWith('in_') ? 'dhcp_from_pod' : 'dhcp_to_pod';
}
