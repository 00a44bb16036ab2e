// The domain-side bindings by name (vmwrapper, tapctl). Pure: no netlink, no root.
import { bridgeDomain } from './bridge/domain';
import { slirpDomain } from './slirp/domain';
import { passtDomain } from './passt/domain';
import type { DomainBinding } from './domain-types';
import { isImplemented, type ImplementedBinding } from './names';

// masquerade hands QEMU a tap just as bridge does
const DOMAIN: Record<ImplementedBinding, DomainBinding> = {
  bridge: bridgeDomain,
  masquerade: { ...bridgeDomain, name: 'masquerade' },
  slirp: slirpDomain,
  // the macvtap's /dev/tapN fds are tap fds to QEMU (vnet_hdr on, one per queue)
  macvtap: { ...bridgeDomain, name: 'macvtap' },
  passt: passtDomain,
};

/** The domain side of a binding, or undefined for one tapwire does not build. */
export function domainBinding(name: string): DomainBinding | undefined {
  return isImplemented(name) ? DOMAIN[name] : undefined;
}

export type { DomainBinding, DomainNic } from './domain-types';
