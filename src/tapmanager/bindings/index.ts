// The pod-side bindings by name. A request that names one without a module is refused
// (BindingNotImplementedError) before anything is built.
import { BindingNotImplementedError } from './errors';
import { bridgePod } from './bridge/pod';
import { masqueradePod } from './masquerade/pod';
import { slirpPod } from './slirp/pod';
import { macvtapPod } from './macvtap/pod';
import { passtPod } from './passt/pod';
import { isImplemented, type ImplementedBinding } from './names';
import type { PodBinding } from './types';

const POD: Record<ImplementedBinding, PodBinding> = {
  bridge: bridgePod,
  masquerade: masqueradePod,
  slirp: slirpPod,
  macvtap: macvtapPod,
  passt: passtPod,
};

/** The pod side of a binding; `field` names where the request asked for it. */
export function podBinding(name: string, field = 'binding'): PodBinding {
  if (!isImplemented(name)) throw new BindingNotImplementedError(field, name);
  return POD[name];
}

/** The pod side of a recorded NIC (records written before bindings were named are bridge). */
export function bindingOf(nic: { binding?: string }): PodBinding {
  return podBinding(nic.binding ?? 'bridge');
}

export { BindingNotImplementedError, UndoError } from './errors';
export type { NicSpec, PodBinding } from './types';
