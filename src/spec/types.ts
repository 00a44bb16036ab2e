// The VM network spec: KubeVirt's "Interfaces and Networks" shape (spec.domain.devices.
// interfaces and spec.networks of a VirtualMachineInstance, flattened into one object) as
// tapwire reads it from a pod annotation. These are the types of a spec that passed
// validation (parse.ts): MACs canonical, defaults filled in, one binding and one network
// kind each, names checked against each other.

/** The only version this tapwire reads; see docs/network-spec.md for why a spec carries one. */
export const SPEC_API_VERSION = 'tapwire.io/v1alpha1';
export const SPEC_API_VERSIONS: readonly string[] = [SPEC_API_VERSION];

/** The pod annotation that holds the spec (JSON or YAML). */
export const NETWORK_SPEC_ANNOTATION = 'tapwire.io/network-spec';

/** NIC models the guest can be given (KubeVirt's list); the default is virtio. */
export const NIC_MODELS = ['virtio', 'e1000', 'e1000e', 'ne2k_pci', 'pcnet', 'rtl8139'] as const;
export type NicModel = (typeof NIC_MODELS)[number];

/** Bindings KubeVirt knows; tapwire implements all five (issue #18). */
export const BINDINGS = ['bridge', 'masquerade', 'passt', 'macvtap', 'slirp'] as const;
export type BindingName = (typeof BINDINGS)[number];
export const IMPLEMENTED_BINDINGS: readonly BindingName[] = ['bridge', 'masquerade', 'slirp', 'macvtap', 'passt'];

/** Network kinds; exactly one per network. */
export const NETWORK_KINDS = ['pod', 'multus', 'resource', 'l2'] as const;
export type NetworkKind = (typeof NETWORK_KINDS)[number];

export const SPEC_LIMITS = {
  /** the whole annotation: Kubernetes caps all of a pod's annotations together at 256 KiB */
  textBytes: 256 << 10,
  /** YAML aliases: a spec needs none; a few are allowed, a billion-laughs document is refused */
  yamlAliases: 16,
  /** tapmanager's MAX_NICS: most guest NICs per sandbox */
  interfaces: 16,
  /** an interface's name becomes part of link names: IFNAMSIZ less the NUL */
  name: 15,
  ports: 256,
  queues: 16,
  ntpServers: 16,
  /** a DHCP option's value is at most 255 bytes (RFC 2132 2) */
  optionBytes: 255,
  privateOptionMin: 224,
  privateOptionMax: 254,
} as const;

export interface PortSpec {
  name?: string;
  port: number;
  /** tapwire's extension: the last port of a range port..endPort (masquerade and slirp forward it all) */
  endPort?: number;
  protocol: 'TCP' | 'UDP';
}

export interface PrivateOption {
  option: number;
  value: string;
}

export interface DhcpOptionsSpec {
  /** option 67 */
  bootFileName?: string;
  /** option 66 */
  tftpServerName?: string;
  /** option 42 */
  ntpServers?: string[];
  /** options 224-254, each once */
  privateOptions?: PrivateOption[];
}

export interface InterfaceSpec {
  name: string;
  model: NicModel;
  /** canonical (lower case, colons); absent: the pod interface's MAC */
  macAddress?: string;
  ports: PortSpec[];
  queues?: number;
  dhcpOptions?: DhcpOptionsSpec;
  binding: 'bridge' | 'masquerade' | 'slirp' | 'macvtap';
}

/** A NetworkAttachmentDefinition reference; no namespace means the pod's. */
export interface NadRef {
  namespace?: string;
  name: string;
}

export type NetworkSpecEntry =
  /** vmNetworkCIDR: a masquerade guest's IPv4 network (KubeVirt's field; default 10.0.2.0/24) */
  /** vmIPv6NetworkCIDR: its IPv6 network (KubeVirt's field; default fd10:0:2::/120) */
  | { name: string; kind: 'pod'; vmNetworkCIDR?: string; vmIPv6NetworkCIDR?: string }
  | { name: string; kind: 'multus'; networkName: NadRef }
  /** an interface a device plugin put into the pod for this resource: L2 only */
  | { name: string; kind: 'resource'; resourceName: string; interfaceName: string }
  /** an interface already in the pod, bridged to the guest with no IP and no DHCP */
  | { name: string; kind: 'l2'; interfaceName: string };

export interface NetworkSpec {
  apiVersion: string;
  /** in spec order: the guest sees its NICs in this order */
  interfaces: InterfaceSpec[];
  /** in the order of `interfaces` (each interface's network at the same index) */
  networks: NetworkSpecEntry[];
  autoattachPodInterface: boolean;
}
