// The bindings a NIC may ask for (KubeVirt's names), and which of them tapwire builds.
// Pure: shared by the daemon (pod side) and vmwrapper/tapctl (domain side).

export const BINDING_NAMES = ['bridge', 'masquerade', 'passt', 'macvtap', 'slirp'] as const;
export type BindingName = (typeof BINDING_NAMES)[number];

/** The bindings that have a module (bindings/<name>/); the others come with issue #18. */
export const IMPLEMENTED_BINDINGS = [
  'bridge',
  'masquerade',
  'slirp',
  'macvtap',
  'passt',
] as const satisfies readonly BindingName[];
export type ImplementedBinding = (typeof IMPLEMENTED_BINDINGS)[number];

export function isImplemented(name: string): name is ImplementedBinding {
  return (IMPLEMENTED_BINDINGS as readonly string[]).includes(name);
}

/** A NIC's name (the spec's interface name): what tapctl and vmwrapper show and libvirt's alias carries. */
export const NIC_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
