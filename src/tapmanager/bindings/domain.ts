// The domain-side bindings by name (vmwrapper, tapctl). Pure: no netlink, no root.
import { bridgeDomain } from './bridge/domain';
import { slirpDomain } from './slirp/domain';
import type { DomainBinding } from './domain-types';
import { isImplemented, type ImplementedBinding } from './names';

// masquerade hands QEMU a tap just as bridge does
const DOMAIN: Record<ImplementedBinding, DomainBinding> = {
  bridge: bridgeDomain,
  masquerade: { ...bridgeDomain, name: 'masquerade' },
  slirp: slirpDomain,
};

/** The domain side of a binding, or undefined for one tapwire does not build. */
export function domainBinding(name: string): DomainBinding | undefined {
  return isImplemented(name) ? DOMAIN[name] : undefined;
}

export type { DomainBinding, DomainNic } from './domain-types';
