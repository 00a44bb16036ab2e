// A VM pod's network as the backend made it, from the backend's verbose PodSandboxStatus:
// containerd 1.6 puts a JSON object under info["info"] with the sandbox's `pid`, its OCI
// `runtimeSpec` (the network namespace's path) and `cniResult` in go-cni's shape
// (`Interfaces` by name with `IPConfigs` {IP, Gateway}, `Mac`, `Sandbox`; `Routes`; `DNS`).
// go-cni keeps addresses without their prefix length, so the CNI result tapmanager gets is
// built with the prefix lengths the kernel has (toCniResult's prefixOf). Read leniently, as
// Go's decoder reads: fields not used here are ignored; what is used is checked, and a
// problem names the field.
import { status as Status } from '@grpc/grpc-js';
import { isIP } from 'node:net';
import * as v from 'valibot';
import type { CniResult } from '../../cni/result';
import { quote } from '../../util/quote';
import { CriError } from '../errors';

export interface BackendInterface {
  name: string;
  mac: string;
  /** the netns path for the pod side, '' for the node side */
  sandbox: string;
  ips: { ip: string; gateway: string }[];
}

export interface BackendSandboxNet {
  pid: number;
  /** the pod's network namespace: the runtime spec's path, or the sandbox process's */
  netnsPath: string;
  interfaces: BackendInterface[];
  routes: { dst: string; gw?: string }[];
}

const str = v.optional(v.nullable(v.string()), '');
const Info = v.looseObject({
  pid: v.optional(v.number()),
  runtimeSpec: v.optional(
    v.looseObject({
      linux: v.optional(
        v.looseObject({
          namespaces: v.optional(v.nullable(v.array(v.looseObject({ type: str, path: str }))), []),
        }),
      ),
    }),
  ),
  cniResult: v.optional(
    v.nullable(
      v.looseObject({
        Interfaces: v.optional(
          v.nullable(
            v.record(
              v.string(),
              v.nullable(
                v.looseObject({
                  IPConfigs: v.optional(v.nullable(v.array(v.looseObject({ IP: str, Gateway: str }))), []),
                  Mac: str,
                  Sandbox: str,
                }),
              ),
            ),
          ),
          {},
        ),
        Routes: v.optional(v.nullable(v.array(v.nullable(v.looseObject({ dst: str, gw: str })))), []),
      }),
    ),
  ),
});

function unusable(sandboxId: string, why: string): CriError {
  return new CriError(Status.FAILED_PRECONDITION, `the runtime's status of sandbox ${sandboxId} ${why}`);
}

/** The network of sandboxId from the backend's verbose status info. */
export function readBackendSandbox(sandboxId: string, info: Record<string, string>): BackendSandboxNet {
  const text = info.info;
  if (text === undefined) throw unusable(sandboxId, 'has no verbose info["info"] (is the runtime containerd?)');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw unusable(sandboxId, `has info["info"] that is not JSON: ${(e as Error).message}`);
  }
  const parsed = v.safeParse(Info, json);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const at = v.getDotPath(issue) ?? '(top)';
    throw unusable(sandboxId, `has info["info"].${at} ${quote(issue.input)}: ${issue.message}`);
  }
  const o = parsed.output;
  const pid = o.pid;
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) {
    throw unusable(sandboxId, `has info["info"].pid ${quote(pid)}: not a process id`);
  }
  const ns = (o.runtimeSpec?.linux?.namespaces ?? []).find((n) => n.type === 'network');
  const netnsPath = ns?.path ? ns.path : `/proc/${pid}/ns/net`;
  const interfaces: BackendInterface[] = [];
  for (const [name, i] of Object.entries(o.cniResult?.Interfaces ?? {})) {
    if (!i) continue;
    const ips = (i.IPConfigs ?? []).map((c) => ({ ip: c.IP ?? '', gateway: c.Gateway ?? '' }));
    for (const [k, c] of ips.entries()) {
      if (!isIP(c.ip)) throw unusable(sandboxId, `has cniResult.Interfaces.${name}.IPConfigs[${k}].IP ${quote(c.ip)}`);
    }
    interfaces.push({ name, mac: i.Mac ?? '', sandbox: i.Sandbox ?? '', ips });
  }
  const routes = (o.cniResult?.Routes ?? [])
    .filter((r): r is NonNullable<typeof r> => !!r && !!r.dst)
    .map((r) => ({ dst: r.dst!, ...(r.gw ? { gw: r.gw } : {}) }));
  return { pid, netnsPath, interfaces, routes };
}

const isLoopback = (ip: string): boolean => ip === '::1' || ip.startsWith('127.');

/** The pod-side interfaces that have an address other than loopback: the VM's NICs. */
export function podInterfaces(net: BackendSandboxNet): BackendInterface[] {
  return net.interfaces.filter((i) => i.sandbox !== '' && i.ips.some((c) => !isLoopback(c.ip)));
}

/**
 * The CNI result (spec 1.0 shape) tapmanager sets a VM pod up with: the pod-side interfaces
 * that have an address other than loopback, their addresses with the prefix length the
 * kernel has (prefixOf), gateways and routes as the runtime reported them.
 */
export function toCniResult(net: BackendSandboxNet, prefixOf: (ifname: string, ip: string) => number): CniResult {
  const pod = podInterfaces(net);
  return {
    cniVersion: '1.0.0',
    interfaces: pod.map((i) => ({ name: i.name, ...(i.mac ? { mac: i.mac } : {}), sandbox: net.netnsPath })),
    ips: pod.flatMap((i, index) =>
      i.ips
        .filter((c) => !isLoopback(c.ip))
        .map((c) => ({
          version: isIP(c.ip) === 6 ? ('6' as const) : ('4' as const),
          address: `${c.ip}/${prefixOf(i.name, c.ip)}`,
          ...(c.gateway ? { gateway: c.gateway } : {}),
          interface: index,
        })),
    ),
    routes: net.routes,
  };
}
