// A pod's VM network spec on tapwire-cri's side, shared by the standalone mode and the
// proxy: read the spec from the pod annotation (a bad one is INVALID_ARGUMENT listing every
// problem), resolve its multus networks to NetworkAttachmentDefinition files (before anything
// is built), attach them to the pod netns as net1, net2, ... (Multus's names, in spec order)
// and detach them in reverse, and turn the spec plus the CNI results into tapmanager's
// per-NIC `nics` request. Also the verbose status: every network in Multus's
// network-status shape.
import { status as Status } from '@grpc/grpc-js';
import { attachNetworks, detachNetworks, extraIfName } from '../cni/attach';
import type { NetworkConfigList } from '../cni/config';
import { loadNad, NadError, nadRefText, type NadRef } from '../cni/nad';
import type { Attachment, CniRunner } from '../cni/network';
import type { CniResult } from '../cni/result';
import { forTapwire } from '../cni/version';
import { parseMac } from '../net/mac';
import { effectiveNics, isSpecError, NETWORK_SPEC_ANNOTATION, specFromAnnotations, type NetworkSpec } from '../spec';
import type { NicRequest } from '../tapmanager/protocol';
import { CriError } from './errors';

/** One guest NIC as tapmanager's setup takes it (the `nics` request of docs/protocol.md). */
export type { NicRequest };

/** A multus network of the spec: where it is attached and, once it is, its CNI result. */
export interface ExtraNetwork {
  /** the spec's network (and interface) name */
  name: string;
  /** the NetworkAttachmentDefinition, namespace/name */
  nad: string;
  /** the CNI network name in its config (what the result cache is keyed by) */
  network: string;
  ifName: string;
  result?: CniResult;
}

/** What a sandbox record keeps of its VM network. */
export interface VmNetworkState {
  spec: NetworkSpec;
  /** the multus networks, in spec order, each with the config it is attached with */
  extras: ExtraNetwork[];
}

/** A VM network about to be built: the state plus each extra network's config. */
export interface VmNetworkPlan {
  state: VmNetworkState;
  lists: NetworkConfigList[];
}

/** The spec a pod's annotations carry; INVALID_ARGUMENT with every problem when it is bad. */
export function readSpec(annotations: Record<string, string> | undefined): NetworkSpec | undefined {
  try {
    return specFromAnnotations(annotations);
  } catch (e) {
    if (isSpecError(e))
      throw new CriError(Status.INVALID_ARGUMENT, `annotation ${NETWORK_SPEC_ANNOTATION}: ${e.message}`);
    throw e;
  }
}

/**
 * Resolves the spec's multus networks (a name without a namespace is in the pod's) to NAD
 * files. FAILED_PRECONDITION when there is no NAD directory or a NAD is missing or unusable:
 * the kubelet retries, and a NAD written meanwhile is found then.
 */
export function planVmNetwork(spec: NetworkSpec, podNamespace: string, nadDir: string | undefined): VmNetworkPlan {
  const { interfaces, networks } = effectiveNics(spec);
  const extras: ExtraNetwork[] = [];
  const lists: NetworkConfigList[] = [];
  for (const [i, n] of networks.entries()) {
    if (n.kind !== 'multus') continue;
    const ref: NadRef = { namespace: n.networkName.namespace ?? podNamespace, name: n.networkName.name };
    if (!nadDir) {
      throw new CriError(
        Status.FAILED_PRECONDITION,
        `interfaces[${i}] ("${interfaces[i]!.name}") uses network-attachment-definition ${nadRefText(ref)}, ` +
          'but tapwire-cri was started without --network-attachments-dir',
      );
    }
    let list: NetworkConfigList;
    try {
      list = loadNad(nadDir, ref);
    } catch (e) {
      if (e instanceof NadError) throw new CriError(Status.FAILED_PRECONDITION, e.message);
      throw e;
    }
    extras.push({ name: n.name, nad: nadRefText(ref), network: list.name, ifName: extraIfName(extras.length) });
    lists.push(list);
  }
  return { state: { spec, extras }, lists };
}

/** ADD of every extra network, in order; on a failure the ones made are deleted again. */
export async function attachExtras(
  runner: CniRunner,
  plan: VmNetworkPlan,
  base: Omit<Attachment, 'ifName'>,
): Promise<void> {
  const got = await attachNetworks(
    runner,
    plan.lists,
    base,
    plan.state.extras.map((x) => x.ifName),
  );
  got.forEach((g, i) => (plan.state.extras[i]!.result = g.result));
}

/** DEL of every extra network, last first; each attempted. Returns the failures. */
export function detachExtras(
  runner: CniRunner,
  state: VmNetworkState | undefined,
  base: Omit<Attachment, 'ifName'>,
): Promise<Error[]> {
  return detachNetworks(runner, state?.extras ?? [], base);
}

const hasIp = (r: CniResult | undefined, v6: boolean): boolean =>
  (r?.ips ?? []).some((ip) => ip.address.includes(':') === v6);

/**
 * tapmanager's `nics`, in spec order. The pod network's NIC takes `podIfName` with the pod's
 * CNI result; a multus network's its netN with that network's result (IPv4, IPv6 or both:
 * tapmanager serves DHCPv4, DHCPv6 + RAs for what it holds), or none (L2 only) when its CNI
 * gave no address; a resource or l2 network's the interface it names.
 */
export function buildNics(state: VmNetworkState, podIfName: string, podResult: CniResult | undefined): NicRequest[] {
  const { interfaces, networks } = effectiveNics(state.spec);
  return interfaces.map((it, i) => {
    const n = networks[i]!;
    let podInterface: string;
    let cniResult: CniResult | undefined;
    if (n.kind === 'pod') {
      podInterface = podIfName;
      cniResult = podResult;
    } else if (n.kind === 'multus') {
      const x = state.extras.find((e) => e.name === n.name)!;
      podInterface = x.ifName;
      cniResult = hasIp(x.result, false) || hasIp(x.result, true) ? x.result : undefined;
    } else {
      podInterface = n.interfaceName;
    }
    // the spec's dhcpOptions are DHCPv4 options: only a DHCPv4 server takes them
    if (it.dhcpOptions && !hasIp(cniResult, false)) {
      throw new CriError(
        Status.FAILED_PRECONDITION,
        `interfaces[${i}].dhcpOptions: network "${n.name}" got no IPv4 address from CNI, so no DHCP server serves it`,
      );
    }
    return {
      name: it.name,
      binding: it.binding,
      podInterface,
      ...(cniResult ? { cniResult: forTapwire(cniResult) } : {}),
      ...(it.macAddress ? { macAddress: it.macAddress } : {}),
      model: it.model,
      ...(it.queues !== undefined ? { queues: it.queues } : {}),
      ...(it.dhcpOptions ? { dhcpOptions: it.dhcpOptions } : {}),
      ...(it.ports.length ? { ports: it.ports } : {}),
      ...(it.binding === 'masquerade' && n.kind === 'pod' && n.vmNetworkCIDR ? { guestCidr: n.vmNetworkCIDR } : {}),
      ...(it.binding === 'masquerade' && n.kind === 'pod' && n.vmIPv6NetworkCIDR
        ? { guestCidr6: n.vmIPv6NetworkCIDR }
        : {}),
    };
  });
}

/** One entry of Multus's `k8s.v1.cni.cncf.io/network-status` annotation. */
export interface NetworkStatus {
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  default?: boolean;
  dns?: CniResult['dns'];
  gateway?: string[];
}

export const NETWORK_STATUS_KEY = 'k8s.v1.cni.cncf.io/network-status';

function statusOf(name: string, ifName: string, r: CniResult | undefined, isDefault: boolean): NetworkStatus {
  const ifaces = r?.interfaces ?? [];
  const idx = ifaces.findIndex((i) => i.name === ifName && i.sandbox);
  const ips = (r?.ips ?? []).filter((ip) => idx < 0 || ip.interface === undefined || ip.interface === idx);
  const gateways = ips.flatMap((ip) => (ip.gateway ? [ip.gateway] : []));
  const mac = parseMac(ifaces[idx]?.mac);
  return {
    name,
    interface: ifName,
    ips: ips.map((ip) => ip.address.split('/')[0]!),
    ...(mac ? { mac } : {}),
    default: isDefault,
    dns: r?.dns ?? {},
    ...(gateways.length ? { gateway: gateways } : {}),
  };
}

/**
 * Every network of the pod as Multus reports it: the pod network first (default: true,
 * named by its CNI network), then each NAD (named namespace/name) and each L2-only
 * interface (named by the spec, with no IP), in spec order.
 */
export function networkStatus(
  podNetwork: string,
  podIfName: string,
  podResult: CniResult | undefined,
  state: VmNetworkState | undefined,
): NetworkStatus[] {
  const out = [statusOf(podNetwork, podIfName, podResult, true)];
  if (!state) return out;
  for (const n of effectiveNics(state.spec).networks) {
    if (n.kind === 'multus') {
      const x = state.extras.find((e) => e.name === n.name)!;
      out.push(statusOf(x.nad, x.ifName, x.result, false));
    } else if (n.kind === 'resource' || n.kind === 'l2') {
      out.push({ name: n.name, interface: n.interfaceName, ips: [], default: false, dns: {} });
    }
  }
  return out;
}
