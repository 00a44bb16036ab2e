// The guest's resolver settings (DHCP options 6, 15, 119): the CRI DNSConfig when the
// runtime gave one, else the CNI result's dns. Never invents a resolver.
import { isIPv6 } from 'node:net';
import { isDnsName, type DnsNameRule } from '../../net/dns-name';
import type { CniResult, DnsConfig } from '../../cni/result';
import { ip4ToNum } from '../../net/ipv4';
import { PlanError, shown } from './plan-error';

export interface DnsPlan {
  dns: string[];
  search: string[];
  domain?: string;
  warnings: string[];
}

// the underscore some clusters use; an optional trailing root dot
const NAME_RULE: DnsNameRule = { underscore: true, rootDot: true };

function list(field: string, v: unknown): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new PlanError(field, `invalid ${field} ${shown(v)}: not a list`);
  return v;
}

function servers(field: string, v: unknown, warnings: string[]): string[] {
  const out: string[] = [];
  for (const [i, s] of list(field, v).entries()) {
    if (typeof s === 'string' && ip4ToNum(s) !== undefined) out.push(s);
    else if (typeof s === 'string' && isIPv6(s))
      warnings.push(`${field}[${i}] ${s} is IPv6; DHCPv4 option 6 cannot carry it`);
    else throw new PlanError(`${field}[${i}]`, `invalid ${field}[${i}] ${shown(s)}: not an IP address`);
  }
  return out;
}

function name(field: string, s: unknown): string {
  if (typeof s !== 'string' || !isDnsName(s, NAME_RULE)) {
    throw new PlanError(field, `invalid ${field} ${shown(s)}: not a domain name`);
  }
  return s;
}

export function planDns(cni: CniResult, cri?: DnsConfig): DnsPlan {
  const warnings: string[] = [];
  if (cri) {
    return {
      dns: servers('dns.servers', cri.servers, warnings),
      search: list('dns.searches', cri.searches).map((s, i) => name(`dns.searches[${i}]`, s)),
      warnings,
    };
  }
  const d = cni.dns ?? {};
  return {
    dns: servers('cniResult.dns.nameservers', d.nameservers, warnings),
    search: list('cniResult.dns.search', d.search).map((s, i) => name(`cniResult.dns.search[${i}]`, s)),
    ...(d.domain !== undefined && d.domain !== '' ? { domain: name('cniResult.dns.domain', d.domain) } : {}),
    warnings,
  };
}
