// A sandbox's record on disk: the request, the veth snapshots taken before anything
// was touched, and everything that was built, so that teardown (even after a crash
// and a restart) can restore the veth exactly.
import type { ImplementedBinding } from './bindings/names';
import type { NicDhcpOptions, NicPort } from './bindings/types';
import type { MasqRecord } from './bindings/masquerade/pod';
import type { PasstRecord } from './bindings/passt/args';
import type { GuestIpv6Plan } from './plan/guest-ipv6';
import type { GuestNetworkPlan } from './plan/guest-network';
import type { SetupRequest } from './protocol';
import type { VethSnapshot } from './snapshot';

export const RECORD_VERSION = 1;

export type SandboxState =
  /** the plan is recorded, steps may be partly applied: a restart rolls it back */
  | 'setting-up'
  /** fully built */
  | 'ready'
  /** teardown started: a restart finishes it */
  | 'tearing-down';

export interface NicRecord {
  /** the spec's interface name (a request with `nics`) */
  name?: string;
  /** its binding (bindings/); absent: bridge (a request without `nics`, or an older record) */
  binding?: ImplementedBinding;
  /** index in the CNI result's interfaces of the pod interface (a request without `nics`) */
  cniIndex: number;
  veth: VethSnapshot;
  /** the fresh locally administered MAC the veth gets (the guest takes the veth's own) */
  vethNewMac: string;
  bridge: string;
  /**
   * The interface indexes the bridge and the tap are created with, picked free and
   * recorded before they exist: a link with the name and the index is the one this
   * setup made (topology.ts ownLink). Absent in records written before they were kept.
   */
  bridgeIndex?: number;
  bridgeMac: string;
  tap: string;
  tapIndex?: number;
  guestMac: string;
  mtu: number;
  model: string;
  queues: number;
  /** what the guest gets by DHCP; absent: an L2-only NIC (no IP handed over, no DHCP server) */
  plan?: GuestNetworkPlan;
  dhcpOptions?: NicDhcpOptions;
  /** recorded; used by later bindings (masquerade forwards them) */
  ports?: NicPort[];
  /** a masquerade NIC's NAT side (bindings/masquerade) */
  masq?: MasqRecord;
  /** a slirp NIC: the pod interface's IPv4 address its ports are forwarded from */
  slirp?: { podIp: string };
  /** a macvtap NIC: its mode (the macvtap is `tap`, at `tapIndex`) */
  macvtap?: { mode: 'bridge' | 'passthru' };
  /** a passt NIC: how passt runs, and the passt running now (bindings/passt) */
  passt?: PasstRecord;
  /** IPv6 for the guest (DHCPv6 + RAs), when the veth had a global IPv6 address */
  plan6?: GuestIpv6Plan;
}

export interface SandboxRecord {
  version: number;
  sandboxId: string;
  netnsPath: string;
  /**
   * SO_NETNS_COOKIE of the namespace set up (netns-pin.ts): another namespace found at
   * netnsPath later is not this sandbox's. Absent in records written before it was kept.
   */
  netnsCookie?: string;
  state: SandboxState;
  createdAt: string;
  updatedAt: string;
  /** the validated request, to answer a repeated setup and to rebuild DHCP after a restart */
  request: SetupRequest;
  /** the secret half of the network key handed to vmwrapper */
  token: string;
  fenceTable: string;
  nics: NicRecord[];
}
