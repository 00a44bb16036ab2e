// What a runtime passes to plugins besides the config: CNI_ARGS (Kubernetes pod identity)
// and runtimeConfig, filled only with the capabilities a plugin declares.
import type { PluginConf } from './config';

export interface PodArgs {
  podNamespace: string;
  podName: string;
  /** The sandbox id (K8S_POD_INFRA_CONTAINER_ID). */
  infraContainerId: string;
  podUid?: string;
}

/** A port mapping in the runtimeConfig shape the portmap plugin reads. */
export interface CniPortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIP?: string;
}

/**
 * The most host-port mappings one sandbox may ask of the portmap plugin. It adds each
 * mapping's iptables rules in turn, so time grows with the count: 1000 mappings took 119 s
 * and 10,000 ran past its 120 s limit. 256 keeps an ADD (and the DEL of a rollback) well
 * inside the kubelet's 2 min runtime request timeout, and is far more than a pod uses.
 */
export const MAX_PORT_MAPPINGS = 256;

export interface CniDns {
  servers?: string[];
  searches?: string[];
  options?: string[];
}

/** Capability arguments offered to every plugin; each gets the ones it declares. */
export interface CapabilityArgs {
  portMappings?: CniPortMapping[];
  dns?: CniDns;
}

/** What a CNI_ARGS value cannot hold (the separators and NUL). */
export const BAD_ARG_CHARS = /[;=\0]/;

/** `IgnoreUnknown=1;K8S_POD_NAMESPACE=..;K8S_POD_NAME=..;K8S_POD_INFRA_CONTAINER_ID=..[;K8S_POD_UID=..]` */
export function cniArgs(a: PodArgs): string {
  const pairs: [string, string | undefined][] = [
    ['IgnoreUnknown', '1'],
    ['K8S_POD_NAMESPACE', a.podNamespace],
    ['K8S_POD_NAME', a.podName],
    ['K8S_POD_INFRA_CONTAINER_ID', a.infraContainerId],
    ['K8S_POD_UID', a.podUid],
  ];
  return pairs
    .filter((p): p is [string, string] => p[1] !== undefined && p[1] !== '')
    .map(([k, v]) => {
      if (BAD_ARG_CHARS.test(v))
        throw new TypeError(`CNI_ARGS ${k} ${JSON.stringify(v)} must not contain ";", "=" or NUL`);
      return `${k}=${v}`;
    })
    .join(';');
}

/** runtimeConfig for one plugin: the capability args it declares true and that are set. */
export function runtimeConfigFor(plugin: PluginConf, caps: CapabilityArgs): Record<string, unknown> | undefined {
  const declared = plugin.capabilities ?? {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(caps)) {
    if (declared[k] === true && v !== undefined) out[k] = v;
  }
  return Object.keys(out).length ? out : undefined;
}
