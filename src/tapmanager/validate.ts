// Checks a setup request before anything is touched: first its shape in one place
// (schema.ts: types, sizes, formats, unknown fields), then what needs more than the
// request: the netns on disk, the interfaces against it, the guest hostname, queues
// times NICs. Every error names the field and the value. Returns the NICs to build: the
// CNI interfaces inside the sandbox that carry an IPv4 address.
import * as path from 'node:path';
import { DHCP_NAME_RULE, isDhcpName } from '../dhcp/lease';
import { parseCidr } from '../net/addr-text';
import { dnsNameRule } from '../net/dns-name';
import { IFNAME_RULE, isIfname } from '../net/ifname';
import { podHostname } from '../net/pod-hostname';
import { netnsKey, probeNetns, sameNetns } from '../net/netns';
import { quote } from '../util/quote';
import { badInput } from './errors';
import type { CniResult } from '../cni/result';
import { MAX_FDS, type SetupRequest } from './protocol';
import { parseSetup, SANDBOX_ID_RE, type SetupShape } from './schema';

export interface NicInput {
  /** index in cniResult.interfaces (or 0 when the result lists none) */
  cniIndex: number;
  ifname: string;
  /** the CNI IPv4 address for this interface, 'a.b.c.d/len' */
  cniAddress: string;
  cniGateway?: string;
}

export function checkSandboxId(id: unknown, field = 'sandboxId'): string {
  if (typeof id !== 'string' || !SANDBOX_ID_RE.test(id)) {
    throw badInput(field, id, 'must be 1-128 characters of [A-Za-z0-9_.-], starting with a letter or digit');
  }
  return id;
}

function checkNetnsPath(p: unknown): string {
  if (typeof p !== 'string' || !path.isAbsolute(p)) throw badInput('netnsPath', p, 'must be an absolute path');
  const state = probeNetns(p);
  if (state === 'not-netns') throw badInput('netnsPath', p, 'is not a network namespace (not on nsfs)');
  if (state !== 'ok') throw badInput('netnsPath', p, `cannot be opened (${state})`);
  return p;
}

/**
 * The CNI interfaces against the netns: every one that says it is inside a sandbox must
 * be inside this setup's netns (the same path, or, since a runtime may name one netns by
 * two paths, the same nsfs inode), and every ips[].interface must index one of them.
 */
function checkInterfaces(res: SetupShape['cniResult'], netnsPath: string): void {
  for (const [i, iface] of (res.interfaces ?? []).entries()) {
    if (!iface.sandbox || path.resolve(iface.sandbox) === path.resolve(netnsPath)) continue;
    if (sameNetns(iface.sandbox, netnsPath)) continue;
    const exists = netnsKey(iface.sandbox) !== undefined;
    throw badInput(
      `cniResult.interfaces[${i}].sandbox`,
      iface.sandbox,
      `is not this setup's network namespace (netnsPath ${quote(netnsPath)})${exists ? '' : ' and does not exist'}`,
    );
  }
  const count = res.interfaces?.length;
  if (count === undefined) return;
  for (const [i, ip] of res.ips.entries()) {
    if (ip.interface !== undefined && ip.interface >= count) {
      throw badInput(`cniResult.ips[${i}].interface`, ip.interface, `there are ${count} interfaces`);
    }
  }
}

/** The NICs a setup builds, from the CNI result. */
export function nicsFromResult(res: CniResult): NicInput[] {
  const v4 = (res.ips ?? []).map((ip, i) => ({ ip, i })).filter(({ ip }) => parseCidr(ip.address)?.family === 4);
  if (v4.length === 0) throw badInput('cniResult.ips', res.ips, 'no IPv4 address to hand to the guest');
  const ifaces = res.interfaces ?? [];
  if (ifaces.length === 0) {
    const first = v4[0]!.ip;
    return [
      {
        cniIndex: 0,
        ifname: 'eth0',
        cniAddress: first.address,
        ...(first.gateway ? { cniGateway: first.gateway } : {}),
      },
    ];
  }
  const nics: NicInput[] = [];
  ifaces.forEach((iface, idx) => {
    // the pod-side interfaces carry the sandbox path (checkInterfaceSandboxes: this netns); host-side ones do not
    if (!iface.sandbox) return;
    const mine = v4.filter(({ ip }) => ip.interface === idx);
    if (mine.length === 0) return;
    if (!isIfname(iface.name)) {
      throw badInput(`cniResult.interfaces[${idx}].name`, iface.name, `must be ${IFNAME_RULE}`);
    }
    const first = mine[0]!.ip;
    nics.push({
      cniIndex: idx,
      ifname: iface.name,
      cniAddress: first.address,
      ...(first.gateway ? { cniGateway: first.gateway } : {}),
    });
  });
  if (nics.length === 0) {
    // Results whose ips do not point at an interface: the first sandbox interface gets the first address.
    const podIf = ifaces.findIndex((i) => !!i.sandbox);
    if (podIf < 0)
      throw badInput(
        'cniResult.interfaces',
        ifaces.map((i) => i.name),
        'no interface inside the sandbox',
      );
    const first = v4[0]!.ip;
    nics.push({
      cniIndex: podIf,
      ifname: ifaces[podIf]!.name,
      cniAddress: first.address,
      ...(first.gateway ? { cniGateway: first.gateway } : {}),
    });
  }
  if (nics.length > 16) throw badInput('cniResult.interfaces', nics.length, 'at most 16 guest NICs per sandbox');
  return nics;
}

/**
 * The guest's hostname (DHCP option 12): `hostname`, else the pod name cut as the kubelet
 * cuts it (net/pod-hostname.ts: over 63 bytes, to 63 with no trailing "-" or ".").
 */
export function guestHostname(req: Pick<SetupRequest, 'hostname' | 'podName'>): string | undefined {
  if (req.hostname) return req.hostname;
  if (!req.podName) return undefined;
  return podHostname(req.podName);
}

const NAME_RULE = dnsNameRule(DHCP_NAME_RULE);

/** Validates a setup request: its shape, then what needs the netns; throws EINVAL naming the field. */
export function validateSetup(raw: unknown): { req: SetupRequest; nics: NicInput[] } {
  const r = parseSetup(raw);
  const netnsPath = checkNetnsPath(r.netnsPath);
  checkInterfaces(r.cniResult, netnsPath);
  if (r.hostname && !isDhcpName(r.hostname))
    throw badInput('hostname', r.hostname, `must be a DNS name (${NAME_RULE})`);
  if (!r.hostname && r.podName && !isDhcpName(guestHostname(r))) {
    throw badInput('podName', r.podName, `cannot be the guest hostname (${NAME_RULE}); give hostname`);
  }
  const nics = nicsFromResult(r.cniResult);
  if (r.queues !== undefined && r.queues * nics.length > MAX_FDS) {
    throw badInput('queues', r.queues, `times ${nics.length} NICs exceeds ${MAX_FDS} fds, the most one reply carries`);
  }
  const req: SetupRequest = {
    op: 'setup',
    sandboxId: r.sandboxId,
    netnsPath,
    cniResult: r.cniResult,
    ...(r.dns ? { dns: r.dns } : {}),
    ...(r.hostname ? { hostname: r.hostname } : {}),
    ...(r.podName ? { podName: r.podName } : {}),
    ...(r.podNamespace ? { podNamespace: r.podNamespace } : {}),
    ...(r.nicModel ? { nicModel: r.nicModel } : {}),
    ...(r.queues !== undefined && r.queues > 1 ? { queues: r.queues } : {}),
  };
  return { req, nics };
}
