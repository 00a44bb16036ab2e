// Which IPv4 address the guest gets: the veth's own (kernel state wins), which must be
// one the CNI result lists for that interface. Disagreements that do not stop the plan
// (prefix length, extra addresses, MAC, MTU, gateway) become warnings.
import { parseMac } from '../../net/mac';
import type { CniResult } from '../../cni/result';
import type { VethSnapshot } from '../snapshot';
import { ip4ToNum, parseCidr4 } from '../../net/ipv4';
import { PlanError, shown } from './plan-error';

export interface GuestAddress {
  ip: string;
  prefixLen: number;
  /** the gateway of the matching cniResult.ips entry, if any */
  cniGateway?: string;
  warnings: string[];
}

interface CniIp4 {
  index: number;
  ip: string;
  len: number;
  gateway?: string;
  iface?: number;
}

function isV4Entry(e: { version?: string; address?: unknown }): boolean {
  if (e.version !== undefined) return e.version === '4';
  return typeof e.address === 'string' && !e.address.includes(':');
}

/** The IPv4 entries of cniResult.ips, checked; throws PlanError on a malformed one. */
function cniIpv4(cni: CniResult): CniIp4[] {
  if (cni.ips !== undefined && !Array.isArray(cni.ips)) {
    throw new PlanError('cniResult.ips', `invalid cniResult.ips ${shown(cni.ips)}: not a list`);
  }
  const out: CniIp4[] = [];
  for (const [i, e] of (cni.ips ?? []).entries()) {
    if (typeof e !== 'object' || e === null || !isV4Entry(e)) continue;
    const cidr = typeof e.address === 'string' ? parseCidr4(e.address) : undefined;
    if (!cidr) {
      throw new PlanError(
        `cniResult.ips[${i}].address`,
        `invalid cniResult.ips[${i}].address ${shown(e.address)}: not a.b.c.d/len`,
      );
    }
    if (e.gateway !== undefined && ip4ToNum(e.gateway) === undefined) {
      throw new PlanError(
        `cniResult.ips[${i}].gateway`,
        `invalid cniResult.ips[${i}].gateway ${shown(e.gateway)}: not an IPv4 address`,
      );
    }
    out.push({
      index: i,
      ip: cidr.ip,
      len: cidr.len,
      ...(e.gateway !== undefined ? { gateway: e.gateway } : {}),
      ...(typeof e.interface === 'number' ? { iface: e.interface } : {}),
    });
  }
  return out;
}

export function pickGuestAddress(veth: VethSnapshot, cni: CniResult, cniInterfaceIndex?: number): GuestAddress {
  const all = cniIpv4(cni);
  if (all.length === 0) {
    throw new PlanError('cniResult.ips', `invalid cniResult.ips ${shown(cni.ips ?? [])}: no IPv4 address`);
  }
  const mine = all.filter(
    (e) => cniInterfaceIndex === undefined || e.iface === undefined || e.iface === cniInterfaceIndex,
  );
  if (mine.length === 0) {
    throw new PlanError(
      'cniResult.ips',
      `invalid cniResult.ips ${shown(cni.ips)}: no IPv4 address for interface ${cniInterfaceIndex} ("${veth.ifname}")`,
    );
  }
  const vethField = cniInterfaceIndex === undefined ? 'veth' : `cniResult.interfaces[${cniInterfaceIndex}].name`;
  const kernel = veth.addrs.filter((a) => a.family === 4);
  if (kernel.length === 0) {
    throw new PlanError(
      vethField,
      `invalid ${vethField} "${veth.ifname}": the veth has no IPv4 address in the pod netns`,
    );
  }
  let picked: { addr: (typeof kernel)[number]; cni: CniIp4 } | undefined;
  for (const a of kernel) {
    const c = mine.find((e) => e.ip === a.address);
    if (c) {
      picked = { addr: a, cni: c };
      break;
    }
  }
  if (!picked) {
    const have = kernel.map((a) => `${a.address}/${a.prefixLen}`).join(', ');
    const want = mine.map((e) => `${e.ip}/${e.len}`).join(', ');
    throw new PlanError(
      'cniResult.ips',
      `invalid cniResult.ips ${shown(cni.ips)}: none of ${want} is on veth "${veth.ifname}" (the kernel has ${have})`,
    );
  }
  const { addr, cni: c } = picked;
  const warnings: string[] = [];
  if (addr.prefixLen !== c.len) {
    warnings.push(
      `cniResult.ips[${c.index}] says ${c.ip}/${c.len} but veth "${veth.ifname}" has ${addr.address}/${addr.prefixLen}; the guest gets /${addr.prefixLen}`,
    );
  }
  if (addr.peer !== undefined && addr.peer !== addr.address) {
    warnings.push(
      `address ${addr.address}/${addr.prefixLen} on "${veth.ifname}" has point-to-point peer ${addr.peer}, which DHCP cannot express`,
    );
  }
  for (const a of kernel) {
    if (a !== addr) {
      warnings.push(`extra IPv4 address ${a.address}/${a.prefixLen} on "${veth.ifname}" is not handed to the guest`);
    }
  }
  for (const e of mine) {
    if (e !== c && !kernel.some((a) => a.address === e.ip)) {
      warnings.push(`cniResult.ips[${e.index}] ${e.ip}/${e.len} is not on veth "${veth.ifname}"; ignored`);
    }
  }
  const ifc = cniInterfaceIndex !== undefined ? cni.interfaces?.[cniInterfaceIndex] : undefined;
  if (ifc?.mac !== undefined && parseMac(ifc.mac) !== parseMac(veth.mac)) {
    warnings.push(
      `cniResult.interfaces[${cniInterfaceIndex}].mac ${ifc.mac} differs from the veth's ${veth.mac}; the veth's is used`,
    );
  }
  if (ifc?.mtu !== undefined && ifc.mtu !== veth.mtu) {
    warnings.push(
      `cniResult.interfaces[${cniInterfaceIndex}].mtu ${ifc.mtu} differs from the veth's ${veth.mtu}; the veth's is used`,
    );
  }
  return { ip: addr.address, prefixLen: addr.prefixLen, ...(c.gateway ? { cniGateway: c.gateway } : {}), warnings };
}
