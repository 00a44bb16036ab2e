// Fence counter names (fence/ruleset.ts: nic<i>_spoof, nic<i>_in_<match>, nic<i>_out_<match>)
// as labels: node-wide by rule with the NIC index left out (a fixed set of a few dozen), per
// sandbox by the reasons a frame is dropped.
export function fenceRule(counter: string): string {
  return counter.replace(/^nic\d+_/, '');
}

export const FENCE_REASONS = [
  'spoofed_source',
  'guest_mac_from_pod',
  'dhcp_from_pod',
  'dhcp_to_pod',
  /** router solicitations/advertisements and redirects (IPv6 NDP) crossing the veth */
  'router_from_pod',
  'router_to_pod',
  /** the guest's own router advertisements and redirects, dropped as they leave the tap */
  'router_from_guest',
] as const;

export type FenceReason = (typeof FENCE_REASONS)[number];

export function fenceReason(counter: string): FenceReason {
  const rule = fenceRule(counter);
  if (rule === 'spoof') return 'spoofed_source';
  if (rule === 'in_guestmac') return 'guest_mac_from_pod';
  if (rule === 'guest_ra' || rule === 'guest_redirect') return 'router_from_guest';
  const from = rule.startsWith('in_');
  if (/6_(router|redirect)$/.test(rule)) return from ? 'router_from_pod' : 'router_to_pod';
  return from ? 'dhcp_from_pod' : 'dhcp_to_pod';
}
