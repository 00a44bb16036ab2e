// The rules that look at several fields at once: one binding per interface (and only the
// implemented one), one kind per network, unique names, every interface matched by a
// network of the same name and back, at most one pod network, and what a binding or
// network kind cannot take. They read the raw spec, tolerating any shape, so their
// problems are reported together with the field-by-field ones of schema.ts.
import { parseMac } from '../net/mac';
import type { SpecProblem } from './errors';
import { BINDINGS, IMPLEMENTED_BINDINGS, NETWORK_KINDS } from './types';

type Raw = Record<string, unknown>;

const isObject = (x: unknown): x is Raw => typeof x === 'object' && x !== null && !Array.isArray(x);
const present = (o: Raw, keys: readonly string[]): string[] => keys.filter((k) => o[k] !== undefined);
const items = (x: unknown): [number, Raw][] =>
  Array.isArray(x) ? x.flatMap((e, i): [number, Raw][] => (isObject(e) ? [[i, e]] : [])) : [];

/** Interface names tapwire-cri gives CNI attachments; an l2/resource interface may not take one. */
export function isCniIfName(s: string): boolean {
  return s === 'eth0' || /^net[0-9]+$/.test(s);
}

export function crossFieldProblems(spec: unknown): SpecProblem[] {
  if (!isObject(spec)) return [];
  const out: SpecProblem[] = [];
  const ifaces = items(spec.interfaces);
  const nets = items(spec.networks);
  const noInterfaces =
    spec.interfaces === undefined || (Array.isArray(spec.interfaces) && spec.interfaces.length === 0);
  if (spec.autoattachPodInterface === false && noInterfaces) {
    out.push({
      path: 'autoattachPodInterface',
      value: false,
      reason:
        'with no interfaces leaves the guest no NIC: a VM network has at least one (list an interface, or run the pod without tapwire)',
    });
  }

  for (const [i, it] of ifaces) {
    const at = `interfaces[${i}]`;
    const b = present(it, BINDINGS);
    if (b.length === 0) out.push({ path: at, reason: 'has no binding: give exactly one, e.g. bridge: {}' });
    else if (b.length > 1)
      out.push({ path: at, reason: `has ${b.length} bindings (${b.join(', ')}): give exactly one` });
    else if (!IMPLEMENTED_BINDINGS.includes(b[0] as (typeof BINDINGS)[number])) {
      out.push({
        path: `${at}.${b[0]}`,
        reason: `is not available yet: the ${b[0]} binding comes with a later release; today ${IMPLEMENTED_BINDINGS.join(', ')} are implemented`,
      });
    }
    const model = it.model ?? 'virtio';
    if (typeof it.queues === 'number' && it.queues > 1 && typeof model === 'string' && model !== 'virtio') {
      out.push({ path: `${at}.queues`, value: it.queues, reason: `needs model virtio: ${model} has one queue` });
    }
    const dhcp = it.dhcpOptions;
    if (isObject(dhcp)) {
      const seen = new Set<unknown>();
      for (const [j, o] of items(dhcp.privateOptions)) {
        if (typeof o.option !== 'number') continue;
        if (seen.has(o.option))
          out.push({
            path: `${at}.dhcpOptions.privateOptions[${j}].option`,
            value: o.option,
            reason: 'is given twice',
          });
        seen.add(o.option);
      }
    }
    const ports = new Set<string>();
    const portNames = new Set<unknown>();
    for (const [j, p] of items(it.ports)) {
      const key = `${String(p.port)}/${String(p.protocol ?? 'TCP')}`;
      if (ports.has(key)) out.push({ path: `${at}.ports[${j}]`, value: key, reason: 'is given twice' });
      if (typeof p.endPort === 'number' && typeof p.port === 'number' && p.endPort < p.port)
        out.push({ path: `${at}.ports[${j}].endPort`, value: p.endPort, reason: `is below its port ${p.port}` });
      ports.add(key);
      if (p.name !== undefined) {
        if (portNames.has(p.name))
          out.push({ path: `${at}.ports[${j}].name`, value: p.name, reason: 'is given twice' });
        portNames.add(p.name);
      }
    }
  }
  duplicates(ifaces, 'interfaces', 'name', out);
  const macs = new Map<string, number>();
  for (const [i, it] of ifaces) {
    const mac = parseMac(it.macAddress);
    if (mac === undefined) continue;
    const first = macs.get(mac);
    if (first !== undefined)
      out.push({ path: `interfaces[${i}].macAddress`, value: it.macAddress, reason: `is also interfaces[${first}]'s` });
    else macs.set(mac, i);
  }

  let podAt: number | undefined;
  const l2Names = new Map<string, number>();
  for (const [i, n] of nets) {
    const at = `networks[${i}]`;
    const k = present(n, NETWORK_KINDS);
    if (k.length === 0) out.push({ path: at, reason: `has no kind: give exactly one of ${NETWORK_KINDS.join(', ')}` });
    else if (k.length > 1) out.push({ path: at, reason: `has ${k.length} kinds (${k.join(', ')}): give exactly one` });
    if (n.pod !== undefined) {
      if (podAt !== undefined)
        out.push({ path: `${at}.pod`, reason: `is a second pod network (networks[${podAt}] is one)` });
      podAt ??= i;
    }
    for (const kind of ['resource', 'l2'] as const) {
      const o = n[kind];
      if (!isObject(o) || typeof o.interfaceName !== 'string') continue;
      const path = `${at}.${kind}.interfaceName`;
      if (isCniIfName(o.interfaceName)) {
        out.push({ path, value: o.interfaceName, reason: 'is a name CNI attachments get (eth0, net1, net2, ...)' });
      }
      const first = l2Names.get(o.interfaceName);
      if (first !== undefined) out.push({ path, value: o.interfaceName, reason: `is also networks[${first}]'s` });
      else l2Names.set(o.interfaceName, i);
    }
  }
  duplicates(nets, 'networks', 'name', out);

  // interfaces and networks are matched by name, both ways
  const netByName = new Map(
    nets.filter(([, n]) => typeof n.name === 'string').map(([i, n]) => [n.name, [i, n] as const]),
  );
  const ifNames = new Set(ifaces.map(([, it]) => it.name).filter((x) => typeof x === 'string'));
  for (const [i, it] of ifaces) {
    if (typeof it.name !== 'string') continue;
    const net = netByName.get(it.name);
    if (!net) {
      out.push({
        path: `interfaces[${i}].name`,
        value: it.name,
        reason: 'has no network of the same name in networks',
      });
      continue;
    }
    const [j, n] = net;
    if (it.masquerade !== undefined && n.pod === undefined) {
      out.push({
        path: `interfaces[${i}].masquerade`,
        reason: `needs the pod network: networks[${j}] is not one (masquerade NATs the pod's own address)`,
      });
    }
    if (it.slirp !== undefined && n.pod === undefined) {
      out.push({
        path: `interfaces[${i}].slirp`,
        reason: `needs the pod network: networks[${j}] is not one (slirp forwards ports from the pod's own address)`,
      });
    }
    if (it.passt !== undefined && n.pod === undefined) {
      out.push({
        path: `interfaces[${i}].passt`,
        reason: `needs the pod network: networks[${j}] is not one (passt copies the pod's own address to the guest)`,
      });
    }
    if (it.macvtap !== undefined && n.pod !== undefined) {
      out.push({
        path: `interfaces[${i}].macvtap`,
        reason: `needs an L2 network (multus, l2 or resource): networks[${j}] is the pod network`,
      });
    }
    if (it.macvtap !== undefined && it.dhcpOptions !== undefined) {
      out.push({ path: `interfaces[${i}].dhcpOptions`, reason: 'cannot be served: a macvtap NIC has no DHCP server' });
    }
    if (it.slirp !== undefined && it.dhcpOptions !== undefined) {
      out.push({ path: `interfaces[${i}].dhcpOptions`, reason: 'cannot be served: slirp runs its own DHCP server' });
    }
    if (it.passt !== undefined && it.dhcpOptions !== undefined) {
      out.push({ path: `interfaces[${i}].dhcpOptions`, reason: 'cannot be served: passt runs its own DHCP server' });
    }
    for (const key of ['vmNetworkCIDR', 'vmIPv6NetworkCIDR'] as const)
      if (isObject(n.pod) && n.pod[key] !== undefined && it.masquerade === undefined) {
        out.push({
          path: `networks[${j}].pod.${key}`,
          value: n.pod[key],
          reason: `is for a masquerade interface; interfaces[${i}] is not one`,
        });
      }
    const l2 = n.l2 !== undefined ? 'l2' : n.resource !== undefined ? 'resource' : undefined;
    if (l2 && it.dhcpOptions !== undefined) {
      out.push({
        path: `interfaces[${i}].dhcpOptions`,
        reason: `cannot be served: networks[${j}] is ${l2 === 'l2' ? 'an l2' : 'a resource'} network, with no IP and no DHCP server`,
      });
    }
  }
  for (const [j, n] of nets) {
    if (typeof n.name === 'string' && !ifNames.has(n.name)) {
      out.push({
        path: `networks[${j}].name`,
        value: n.name,
        reason: 'has no interface of the same name in interfaces',
      });
    }
  }
  return out;
}

function duplicates(list: [number, Raw][], where: string, field: string, out: SpecProblem[]): void {
  const seen = new Map<unknown, number>();
  for (const [i, o] of list) {
    const v = o[field];
    if (typeof v !== 'string') continue;
    const first = seen.get(v);
    if (first !== undefined)
      out.push({ path: `${where}[${i}].${field}`, value: v, reason: `is also ${where}[${first}]'s` });
    else seen.set(v, i);
  }
}
