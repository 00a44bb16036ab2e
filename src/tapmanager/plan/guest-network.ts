// What one guest NIC is handed by DHCP, planned from the veth's kernel state as it was
// snapshotted before stripping (the source of truth), reconciled with the CNI result:
// address and prefix, option 3, option 121, DNS, MTU; plus the routes DHCP cannot carry
// and the places where the CNI result and the kernel disagree. Pure: no I/O.
import type { CniResult, DnsConfig } from '../../cni/result';
import type { RouteSnapshot, VethSnapshot } from '../snapshot';
import { pickGuestAddress } from './address';
import { planDns } from './dns';
import { ip4ToNum, parsePrefix4, prefixText, samePrefix } from '../../net/ipv4';
import { PlanError, shown } from './plan-error';
import { describeRoute, planRoutes } from './routes';

export { PlanError } from './plan-error';

export interface GuestNetworkPlan {
  /** from the veth's IPv4 address (reconciled with the CNI result) */
  ip: string;
  prefixLen: number;
  /** option 3: the default route's gateway, else the CNI gateway */
  routers: string[];
  /** option 121, in an order a client may apply one by one */
  classlessRoutes: { dst: string; gw: string }[];
  dns: string[];
  search: string[];
  domain?: string;
  mtu: number;
  /** reported in status, logged once, never silently dropped */
  unexpressible: { route: RouteSnapshot; reason: string }[];
  /** CNI result vs kernel disagreements */
  warnings: string[];
}

export interface GuestNetworkInput {
  veth: VethSnapshot;
  cni: CniResult;
  /** index into cniResult.interfaces of the interface this veth is */
  cniInterfaceIndex?: number;
  /** CRI DNSConfig: wins over the CNI result's dns when given */
  dns?: DnsConfig;
  /** the DHCP server's address on the pod-side bridge, e.g. 169.254.254.2 */
  serverId: string;
}

function checkInput(input: GuestNetworkInput): void {
  const { veth, cni, serverId } = input;
  if (typeof serverId !== 'string' || ip4ToNum(serverId) === undefined) {
    throw new PlanError('serverId', `invalid serverId ${shown(serverId)}: not an IPv4 address`);
  }
  if (typeof cni !== 'object' || cni === null) {
    throw new PlanError('cniResult', `invalid cniResult ${shown(cni)}: not an object`);
  }
  if (typeof veth !== 'object' || veth === null || !Array.isArray(veth.addrs) || !Array.isArray(veth.routes)) {
    throw new PlanError('veth', `invalid veth snapshot ${shown(veth)}: needs addrs and routes lists`);
  }
  if (!Number.isInteger(veth.mtu) || veth.mtu < 68 || veth.mtu > 65535) {
    throw new PlanError('veth.mtu', `invalid veth.mtu ${shown(veth.mtu)} of "${veth.ifname}": not 68..65535`);
  }
}

/** Warnings where cniResult.routes and the kernel's routes disagree (the kernel wins). */
function compareCniRoutes(
  cni: CniResult,
  cniGateway: string | undefined,
  handed: RouteSnapshot[],
  ifname: string,
): string[] {
  const warnings: string[] = [];
  if (cni.routes !== undefined && !Array.isArray(cni.routes)) {
    throw new PlanError('cniResult.routes', `invalid cniResult.routes ${shown(cni.routes)}: not a list`);
  }
  for (const [i, r] of (cni.routes ?? []).entries()) {
    if (typeof r?.dst === 'string' && r.dst.includes(':')) continue; // IPv6: not planned
    const dst = typeof r?.dst === 'string' ? parsePrefix4(r.dst) : undefined;
    if (!dst)
      throw new PlanError(
        `cniResult.routes[${i}].dst`,
        `invalid cniResult.routes[${i}].dst ${shown(r?.dst)}: not a.b.c.d/len`,
      );
    const gw = r.gw ?? cniGateway;
    const k = handed.find((h) => {
      const p = parsePrefix4(h.dst);
      return p !== undefined && samePrefix(p, dst);
    });
    if (!k) {
      warnings.push(
        `cniResult.routes[${i}] ${prefixText(dst)} is not among the kernel routes of "${ifname}"; the guest gets the kernel's`,
      );
    } else if (gw !== undefined && (k.gateway ?? '0.0.0.0') !== gw) {
      warnings.push(
        `cniResult.routes[${i}] ${prefixText(dst)} via ${gw}, but the kernel has "${describeRoute(k, ifname)}"; the guest gets the kernel's`,
      );
    }
  }
  return warnings;
}

export function planGuestNetwork(input: GuestNetworkInput): GuestNetworkPlan {
  checkInput(input);
  const { veth, cni, serverId } = input;
  const addr = pickGuestAddress(veth, cni, input.cniInterfaceIndex);
  const routes = planRoutes(veth.routes, addr, serverId, veth.ifname);
  const dns = planDns(cni, input.dns);
  const warnings = [...addr.warnings, ...routes.warnings, ...dns.warnings];
  if (routes.defaultGateway && addr.cniGateway && routes.defaultGateway !== addr.cniGateway) {
    warnings.push(
      `the CNI gateway ${addr.cniGateway} differs from the default route's gateway ${routes.defaultGateway} on "${veth.ifname}"; option 3 carries ${routes.defaultGateway}`,
    );
  }
  warnings.push(...compareCniRoutes(cni, addr.cniGateway, routes.handed, veth.ifname));
  const router = routes.defaultGateway ?? addr.cniGateway;
  return {
    ip: addr.ip,
    prefixLen: addr.prefixLen,
    routers: router ? [router] : [],
    classlessRoutes: routes.classlessRoutes,
    dns: dns.dns,
    search: dns.search,
    ...(dns.domain !== undefined ? { domain: dns.domain } : {}),
    mtu: veth.mtu,
    unexpressible: routes.unexpressible,
    warnings,
  };
}
