// Checks a setup request before anything is touched: first its shape in one place
// (schema.ts: types, sizes, formats, unknown fields), then what needs more than the
// request: the netns on disk, the interfaces against it, the guest hostname, queues
// times NICs. Every error names the field and the value. Returns the NICs to build: the
// CNI interfaces inside the sandbox that carry an IPv4 address (an IPv6 one, on an IPv6-only result).
import * as path from 'node:path';
import { DHCP_NAME_RULE, isDhcpName } from '../dhcp/lease';
import { parseCidr } from '../net/addr-text';
import { dnsNameRule } from '../net/dns-name';
import { IFNAME_RULE, isIfname } from '../net/ifname';
import { podHostname } from '../net/pod-hostname';
import { netnsKey, probeNetns, sameNetns } from '../net/netns';
import { quote } from '../util/quote';
import type { NicSpec } from './bindings/types';
import { badInput } from './errors';
import type { CniResult } from '../cni/result';
import { MAX_FDS, type SetupRequest } from './protocol';
import { BindingNotImplementedError } from './bindings/errors';
import {
  DEFAULT_GUEST_CIDR,
  guestAddresses,
  guestAddresses6,
  prefixesOverlap,
  prefixesOverlap6,
} from './bindings/masquerade/cidr';
import { qemuDevice } from './bindings/models';
import { isImplemented } from './bindings/names';
import { parseSetup, SANDBOX_ID_RE, type NicRequestShape } from './schema';

export interface NicInput {
  /** index in cniResult.interfaces (or 0 when the result lists none) */
  cniIndex: number;
  ifname: string;
  /** the CNI IPv4 address for this interface, 'a.b.c.d/len' (an IPv6 one on an IPv6-only result) */
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
function checkInterfaces(res: CniResult, netnsPath: string, at = 'cniResult'): void {
  for (const [i, iface] of (res.interfaces ?? []).entries()) {
    if (!iface.sandbox || path.resolve(iface.sandbox) === path.resolve(netnsPath)) continue;
    if (sameNetns(iface.sandbox, netnsPath)) continue;
    const exists = netnsKey(iface.sandbox) !== undefined;
    throw badInput(
      `${at}.interfaces[${i}].sandbox`,
      iface.sandbox,
      `is not this setup's network namespace (netnsPath ${quote(netnsPath)})${exists ? '' : ' and does not exist'}`,
    );
  }
  const count = res.interfaces?.length;
  if (count === undefined) return;
  for (const [i, ip] of (res.ips ?? []).entries()) {
    if (ip.interface !== undefined && ip.interface >= count) {
      throw badInput(`${at}.ips[${i}].interface`, ip.interface, `there are ${count} interfaces`);
    }
  }
}

/** The NICs a setup builds, from the CNI result. */
export function nicsFromResult(res: CniResult): NicInput[] {
  // IPv4 addresses; on an IPv6-only result, its IPv6 ones (the guest gets them by DHCPv6)
  const all = (res.ips ?? []).map((ip, i) => ({ ip, i, family: parseCidr(ip.address)?.family }));
  const v4 = all.some((x) => x.family === 4) ? all.filter((x) => x.family === 4) : all.filter((x) => x.family === 6);
  if (v4.length === 0) throw badInput('cniResult.ips', res.ips, 'no IPv4 or IPv6 address to hand to the guest');
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

/** The NICs of a request without `nics`: one bridge NIC per CNI interface with an IPv4 address (IPv6 if none has). */
function legacySpecs(req: SetupRequest, inputs: NicInput[], defaultModel: string): NicSpec[] {
  return inputs.map((input) => ({
    binding: 'bridge',
    podInterface: input.ifname,
    field: `cniResult.interfaces[${input.cniIndex}].name`,
    cniField: 'cniResult',
    cniIndex: input.cniIndex,
    cniResult: req.cniResult!,
    model: req.nicModel ?? defaultModel,
    queues: req.queues ?? 1,
  }));
}

/**
 * The NICs of a request with `nics`, checked against each other: unique names, pod
 * interfaces and MACs; a binding tapwire builds; multiqueue only on virtio; DHCP
 * options only with an IP to lease; each CNI result against the netns and naming the
 * pod interface; at most MAX_FDS fds in all. (That each pod interface exists is checked
 * when it is read, before anything is built.)
 */
function nicSpecs(nics: NicRequestShape[], netnsPath: string): NicSpec[] {
  const out: NicSpec[] = [];
  const seen = {
    name: new Map<string, number>(),
    podInterface: new Map<string, number>(),
    macAddress: new Map<string, number>(),
  };
  const unique = (i: number, key: keyof typeof seen, value: string | undefined): void => {
    if (value === undefined) return;
    const j = seen[key].get(value);
    if (j !== undefined) throw badInput(`nics[${i}].${key}`, value, `is nics[${j}]'s too; each NIC needs its own`);
    seen[key].set(value, i);
  };
  let fds = 0;
  const guestNets: { at: number; cidr: string }[] = [];
  const guestNets6: { at: number; cidr: string }[] = [];
  for (const [i, n] of nics.entries()) {
    const at = `nics[${i}]`;
    unique(i, 'name', n.name);
    unique(i, 'podInterface', n.podInterface);
    unique(i, 'macAddress', n.macAddress);
    if (!isImplemented(n.binding)) throw new BindingNotImplementedError(`${at}.binding`, n.binding);
    const model = n.model ?? 'virtio';
    const queues = n.queues ?? 1;
    if (queues > 1 && model !== 'virtio')
      throw badInput(`${at}.queues`, queues, `model "${model}" has a single queue (multiqueue needs virtio)`);
    fds += queues;
    if (fds > MAX_FDS)
      throw badInput(
        `${at}.queues`,
        queues,
        `brings the sandbox to ${fds} tap fds, over ${MAX_FDS}, the most one reply carries`,
      );
    if (n.dhcpOptions && !n.cniResult)
      throw badInput(`${at}.dhcpOptions`, n.dhcpOptions, 'needs a cniResult: an L2-only NIC has no DHCP server');
    const codes = new Set<number>();
    for (const [k, o] of (n.dhcpOptions?.privateOptions ?? []).entries()) {
      if (codes.has(o.option))
        throw badInput(`${at}.dhcpOptions.privateOptions[${k}].option`, o.option, 'is given twice');
      codes.add(o.option);
    }
    if (n.dhcpOptions && n.binding === 'slirp')
      throw badInput(`${at}.dhcpOptions`, n.dhcpOptions, 'cannot be served: slirp runs its own DHCP server');
    if (n.dhcpOptions && n.binding === 'passt')
      throw badInput(`${at}.dhcpOptions`, n.dhcpOptions, 'cannot be served: passt runs its own DHCP server');
    if (n.macvtapMode !== undefined && n.binding !== 'macvtap')
      throw badInput(`${at}.macvtapMode`, n.macvtapMode, 'is for the macvtap binding only');
    if (n.dhcpOptions && n.binding === 'macvtap')
      throw badInput(`${at}.dhcpOptions`, n.dhcpOptions, 'cannot be served: a macvtap NIC has no DHCP server');
    if (n.guestCidr !== undefined && n.binding !== 'masquerade')
      throw badInput(`${at}.guestCidr`, n.guestCidr, 'is for the masquerade binding only');
    if (n.guestCidr6 !== undefined && n.binding !== 'masquerade')
      throw badInput(`${at}.guestCidr6`, n.guestCidr6, 'is for the masquerade binding only');
    if (n.guestCidr6 !== undefined) {
      // checked here as well as in the plan: a bad one fails before anything is read
      const mine6 = guestAddresses6(n.guestCidr6, `${at}.guestCidr6`).prefix;
      const other6 = guestNets6.find((g) => prefixesOverlap6(guestAddresses6(g.cidr, '').prefix, mine6));
      if (other6)
        throw badInput(`${at}.guestCidr6`, n.guestCidr6, `overlaps nics[${other6.at}]'s guest network ${other6.cidr}`);
      guestNets6.push({ at: i, cidr: n.guestCidr6 });
    }
    if (n.binding === 'masquerade') {
      // two masquerade NICs on one guest network would share its addresses and routes
      const cidr = n.guestCidr ?? DEFAULT_GUEST_CIDR;
      const mine = guestAddresses(cidr, `${at}.guestCidr`).prefix;
      const other = guestNets.find((g) => prefixesOverlap(guestAddresses(g.cidr, '').prefix, mine));
      if (other) throw badInput(`${at}.guestCidr`, cidr, `overlaps nics[${other.at}]'s guest network ${other.cidr}`);
      guestNets.push({ at: i, cidr });
    }
    for (const [k, p] of (n.ports ?? []).entries())
      if (p.endPort !== undefined && p.endPort < p.port)
        throw badInput(`${at}.ports[${k}].endPort`, p.endPort, `is below its port ${p.port}`);
    let cniIndex = 0;
    if (n.cniResult) {
      checkInterfaces(n.cniResult, netnsPath, `${at}.cniResult`);
      const ifaces = n.cniResult.interfaces ?? [];
      if (ifaces.length > 0) {
        cniIndex = ifaces.findIndex((x) => x.name === n.podInterface && !!x.sandbox);
        if (cniIndex < 0) {
          const inside = ifaces.filter((x) => x.sandbox).map((x) => x.name);
          throw badInput(
            `${at}.podInterface`,
            n.podInterface,
            `is not among the sandbox interfaces of ${at}.cniResult (${inside.join(', ') || 'none'})`,
          );
        }
      }
      if (!(n.cniResult.ips ?? []).some((ip) => parseCidr(ip.address)?.family !== undefined))
        throw badInput(`${at}.cniResult.ips`, n.cniResult.ips, 'no IPv4 or IPv6 address to hand to the guest');
    }
    out.push({
      name: n.name,
      binding: n.binding,
      podInterface: n.podInterface,
      field: `${at}.podInterface`,
      cniField: `${at}.cniResult`,
      cniIndex,
      ...(n.cniResult ? { cniResult: n.cniResult } : {}),
      ...(n.macAddress ? { mac: n.macAddress } : {}),
      model: qemuDevice(model),
      queues,
      ...(n.dhcpOptions ? { dhcpOptions: n.dhcpOptions } : {}),
      ...(n.ports ? { ports: n.ports } : {}),
      ...(n.guestCidr !== undefined ? { guestCidr: n.guestCidr } : {}),
      ...(n.guestCidr6 !== undefined ? { guestCidr6: n.guestCidr6 } : {}),
      ...(n.macvtapMode !== undefined ? { macvtapMode: n.macvtapMode } : {}),
    });
  }
  return out;
}

/** Validates a setup request: its shape, then what needs the netns; throws EINVAL naming the field. */
export function validateSetup(raw: unknown, defaultModel = 'virtio-net-pci'): { req: SetupRequest; nics: NicSpec[] } {
  const r = parseSetup(raw);
  const netnsPath = checkNetnsPath(r.netnsPath);
  if (r.cniResult) checkInterfaces(r.cniResult, netnsPath);
  if (r.hostname && !isDhcpName(r.hostname))
    throw badInput('hostname', r.hostname, `must be a DNS name (${NAME_RULE})`);
  if (!r.hostname && r.podName && !isDhcpName(guestHostname(r))) {
    throw badInput('podName', r.podName, `cannot be the guest hostname (${NAME_RULE}); give hostname`);
  }
  const specs = r.nics ? nicSpecs(r.nics, netnsPath) : undefined;
  const nics = r.cniResult ? nicsFromResult(r.cniResult) : [];
  if (r.queues !== undefined && r.queues * nics.length > MAX_FDS) {
    throw badInput('queues', r.queues, `times ${nics.length} NICs exceeds ${MAX_FDS} fds, the most one reply carries`);
  }
  const req: SetupRequest = {
    op: 'setup',
    sandboxId: r.sandboxId,
    netnsPath,
    ...(r.cniResult ? { cniResult: r.cniResult } : {}),
    ...(r.nics ? { nics: r.nics } : {}),
    ...(r.dns ? { dns: r.dns } : {}),
    ...(r.hostname ? { hostname: r.hostname } : {}),
    ...(r.podName ? { podName: r.podName } : {}),
    ...(r.podNamespace ? { podNamespace: r.podNamespace } : {}),
    ...(r.nicModel ? { nicModel: r.nicModel } : {}),
    ...(r.queues !== undefined && r.queues > 1 ? { queues: r.queues } : {}),
  };
  return { req, nics: specs ?? legacySpecs(req, nics, defaultModel) };
}
