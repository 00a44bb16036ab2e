// Between CRI messages (as @grpc/proto-loader hands them over: keepCase field names,
// enums as strings, int64 as strings) and tapwire's sandbox records.
import { isIP } from 'node:net';
import { BAD_ARG_CHARS, MAX_PORT_MAPPINGS } from '../cni/args';
import { parseCidr } from '../net/addr-text';
import { quote } from '../util/quote';
import type { CniDns, CniPortMapping } from '../cni/args';
import { invalidArgument } from './errors';
import { podHostname } from './hostname';
import type { SandboxRecord } from './record';

/** The parts of runtime.v1.PodSandboxConfig tapwire reads. */
export interface PodSandboxConfigMsg {
  metadata?: { name?: string; uid?: string; namespace?: string; attempt?: number } | null;
  hostname?: string;
  dns_config?: { servers?: string[]; searches?: string[]; options?: string[] } | null;
  port_mappings?: { protocol?: string; container_port?: number; host_port?: number; host_ip?: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: { security_context?: { namespace_options?: { network?: string } | null } | null } | null;
}

export interface PodSandboxFilterMsg {
  id?: string;
  state?: { state?: string } | null;
  label_selector?: Record<string, string>;
}

export interface ValidConfig {
  metadata: SandboxRecord['metadata'];
  hostname: string;
  dns?: CniDns;
  portMappings: CniPortMapping[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/**
 * Longest pod name, namespace or uid RunPodSandbox takes, in bytes: a Kubernetes object
 * name is at most 253 (a DNS subdomain), a namespace 63, a uid 36. Each also goes to the
 * CNI plugins in CNI_ARGS, an environment string, which has a size limit of its own.
 */
export const MAX_METADATA_BYTES = 253;

const PROTOCOLS: Record<string, CniPortMapping['protocol']> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };

/** Checks a RunPodSandbox config; errors name the field and the value. */
export function validateConfig(c: PodSandboxConfigMsg | null | undefined): ValidConfig {
  if (!c) throw invalidArgument('config is required');
  const m = c.metadata;
  if (!m) throw invalidArgument('config.metadata is required');
  for (const f of ['name', 'namespace', 'uid'] as const) {
    const v = m[f];
    if (!v) throw invalidArgument(`config.metadata.${f} must not be empty`);
    const bytes = Buffer.byteLength(v);
    if (bytes > MAX_METADATA_BYTES) {
      throw invalidArgument(
        `config.metadata.${f} ${quote(v)} is ${bytes} bytes; at most ${MAX_METADATA_BYTES} are taken (a Kubernetes name)`,
      );
    }
    if (BAD_ARG_CHARS.test(v)) {
      throw invalidArgument(
        `config.metadata.${f} ${quote(v)} must not contain ";", "=" or NUL (CNI_ARGS, which carries it to the plugins, cannot)`,
      );
    }
  }
  const netMode = c.linux?.security_context?.namespace_options?.network;
  if (netMode === 'NODE') {
    throw invalidArgument(
      'config.linux.security_context.namespace_options.network is NODE (host networking): ' +
        'tapwire gives every VM sandbox its own network namespace and cannot run it on the host network',
    );
  }
  const portMappings: CniPortMapping[] = [];
  for (const [i, p] of (c.port_mappings ?? []).entries()) {
    const protocol = PROTOCOLS[p.protocol ?? 'TCP'];
    if (!protocol)
      throw invalidArgument(`config.port_mappings[${i}].protocol ${JSON.stringify(p.protocol)} is unknown`);
    const hostPort = p.host_port ?? 0;
    const containerPort = p.container_port ?? 0;
    if (hostPort <= 0) continue; // like kubelet: only host ports reach the portmap plugin
    if (hostPort > 65535 || containerPort <= 0 || containerPort > 65535) {
      throw invalidArgument(`config.port_mappings[${i}] ${hostPort}->${containerPort} is out of range 1..65535`);
    }
    // the portmap plugin adds no rule for a host_ip it cannot parse, and says nothing
    if (p.host_ip && isIP(p.host_ip) === 0)
      throw invalidArgument(`config.port_mappings[${i}].host_ip ${quote(p.host_ip)} is not an IP address`);
    portMappings.push({ hostPort, containerPort, protocol, ...(p.host_ip ? { hostIP: p.host_ip } : {}) });
  }
  if (portMappings.length > MAX_PORT_MAPPINGS) {
    throw invalidArgument(
      `config.port_mappings has ${portMappings.length} mappings with a host port; ` +
        `at most ${MAX_PORT_MAPPINGS} are supported (the portmap plugin adds each one's rules in turn)`,
    );
  }
  const d = c.dns_config;
  const dns =
    d && (d.servers?.length || d.searches?.length || d.options?.length)
      ? { servers: d.servers ?? [], searches: d.searches ?? [], options: d.options ?? [] }
      : undefined;
  return {
    metadata: { name: m.name!, uid: m.uid!, namespace: m.namespace!, attempt: m.attempt ?? 0 },
    hostname: podHostname(c.hostname, m.name!),
    ...(dns ? { dns } : {}),
    portMappings,
    labels: { ...(c.labels ?? {}) },
    annotations: { ...(c.annotations ?? {}) },
  };
}

/** runtime.v1.PodSandbox */
export function toPodSandbox(r: SandboxRecord): Record<string, unknown> {
  return {
    id: r.id,
    metadata: r.metadata,
    state: r.state,
    created_at: r.createdAt,
    labels: r.labels,
    annotations: r.annotations,
    runtime_handler: r.runtimeHandler,
  };
}

/** The pod's IPs: the first is `ip`, the rest `additional_ips` (v4 first, like kubelet wants). */
export function podIps(r: SandboxRecord): string[] {
  if (r.networkDown || r.state !== 'SANDBOX_READY') return [];
  const ips = (r.cniResult?.ips ?? []).flatMap((i) => parseCidr(i.address)?.ip ?? []);
  return [...ips.filter((i) => !i.includes(':')), ...ips.filter((i) => i.includes(':'))];
}

/** runtime.v1.PodSandboxStatus */
export function toPodSandboxStatus(r: SandboxRecord): Record<string, unknown> {
  const [ip = '', ...more] = podIps(r);
  return {
    id: r.id,
    metadata: r.metadata,
    state: r.state,
    created_at: r.createdAt,
    network: { ip, additional_ips: more.map((x) => ({ ip: x })) },
    linux: { namespaces: { options: { network: 'POD', pid: 'POD', ipc: 'POD' } } },
    labels: r.labels,
    annotations: r.annotations,
    runtime_handler: r.runtimeHandler,
  };
}

/** ListPodSandbox filter: id (full or unique-enough prefix), state, every label of the selector. */
export function matchesFilter(r: SandboxRecord, f: PodSandboxFilterMsg | null | undefined): boolean {
  if (!f) return true;
  if (f.id && !r.id.startsWith(f.id)) return false;
  if (f.state && (f.state.state ?? 'SANDBOX_READY') !== r.state) return false;
  for (const [k, v] of Object.entries(f.label_selector ?? {})) if (r.labels[k] !== v) return false;
  return true;
}
