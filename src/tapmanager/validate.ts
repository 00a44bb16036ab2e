// Checks a setup request before anything is touched. Every error names the field
// and the value. Returns the NICs to build: the CNI interfaces inside the sandbox
// that carry an IPv4 address.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isIPv4 } from 'node:net';
import { badInput } from './errors';
import { MAX_FDS, MAX_QUEUES, type CniResult, type SetupRequest } from './protocol';

const SANDBOX_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const NSFS_MAGIC = 0x6e736673;

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
  let type: number;
  try {
    type = fs.statfsSync(p).type;
  } catch (e) {
    throw badInput('netnsPath', p, `cannot be opened (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // A bind-mounted namespace or /proc/PID/ns/net lives on nsfs; that it is a *network*
  // namespace is checked by setns(CLONE_NEWNET) when it is entered.
  if (type !== NSFS_MAGIC) throw badInput('netnsPath', p, 'is not a network namespace (not on nsfs)');
  return p;
}

function checkCniResult(r: unknown): CniResult {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw badInput('cniResult', r, 'must be an object');
  const res = r as CniResult;
  if (typeof res.cniVersion !== 'string') throw badInput('cniResult.cniVersion', res.cniVersion, 'must be a string');
  if (!/^(0\.4\.0|1\.\d+\.\d+)$/.test(res.cniVersion)) {
    throw badInput('cniResult.cniVersion', res.cniVersion, 'supported versions are 0.4.0 and 1.x');
  }
  if (!Array.isArray(res.ips)) throw badInput('cniResult.ips', res.ips, 'must be an array');
  if (res.interfaces !== undefined && !Array.isArray(res.interfaces)) {
    throw badInput('cniResult.interfaces', res.interfaces, 'must be an array');
  }
  res.ips.forEach((ip, i) => {
    if (typeof ip?.address !== 'string' || !/^[^/]+\/\d{1,3}$/.test(ip.address)) {
      throw badInput(`cniResult.ips[${i}].address`, ip?.address, 'must be an address in CIDR form');
    }
    if (ip.gateway !== undefined && typeof ip.gateway !== 'string') {
      throw badInput(`cniResult.ips[${i}].gateway`, ip.gateway, 'must be a string');
    }
  });
  return res;
}

/** The NICs a setup builds, from the CNI result. */
export function nicsFromResult(res: CniResult, netnsPath: string): NicInput[] {
  const v4 = (res.ips ?? []).map((ip, i) => ({ ip, i })).filter(({ ip }) => isIPv4(ip.address.split('/')[0]!));
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
    if (!iface || typeof iface.name !== 'string')
      throw badInput(`cniResult.interfaces[${idx}].name`, iface?.name, 'must be a string');
    // the pod-side interfaces carry the sandbox path; host-side ones do not
    if (!iface.sandbox) return;
    if (iface.sandbox !== netnsPath && path.resolve(iface.sandbox) !== path.resolve(netnsPath)) return;
    const mine = v4.filter(({ ip }) => ip.interface === idx);
    if (mine.length === 0) return;
    if (!IFNAME_RE.test(iface.name)) {
      throw badInput(`cniResult.interfaces[${idx}].name`, iface.name, 'must be 1-15 characters of [A-Za-z0-9_.-]');
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

/** Validates a setup request's shape; throws EINVAL naming the field. */
export function validateSetup(req: unknown): { req: SetupRequest; nics: NicInput[] } {
  if (typeof req !== 'object' || req === null) throw badInput('request', req, 'must be an object');
  const r = req as Partial<SetupRequest>;
  const sandboxId = checkSandboxId(r.sandboxId);
  const netnsPath = checkNetnsPath(r.netnsPath);
  const cniResult = checkCniResult(r.cniResult);
  if (r.hostname !== undefined && (typeof r.hostname !== 'string' || !/^[A-Za-z0-9.-]{1,253}$/.test(r.hostname))) {
    throw badInput('hostname', r.hostname, 'must be a DNS name');
  }
  if (r.dns !== undefined) {
    if (typeof r.dns !== 'object' || r.dns === null) throw badInput('dns', r.dns, 'must be an object');
    (r.dns.servers ?? []).forEach((s, i) => {
      if (!isIPv4(s) && !s.includes(':')) throw badInput(`dns.servers[${i}]`, s, 'must be an IP address');
    });
  }
  if (r.nicModel !== undefined && (typeof r.nicModel !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(r.nicModel))) {
    throw badInput('nicModel', r.nicModel, 'must be a QEMU device model name');
  }
  const nics = nicsFromResult(cniResult, netnsPath);
  if (r.queues !== undefined) {
    if (!Number.isInteger(r.queues) || r.queues < 1 || r.queues > MAX_QUEUES) {
      throw badInput('queues', r.queues, `must be an integer 1-${MAX_QUEUES}`);
    }
    if (r.queues * nics.length > MAX_FDS) {
      throw badInput(
        'queues',
        r.queues,
        `times ${nics.length} NICs exceeds ${MAX_FDS} fds, the most one reply carries`,
      );
    }
  }
  const clean: SetupRequest = {
    op: 'setup',
    sandboxId,
    netnsPath,
    cniResult,
    ...(r.dns ? { dns: r.dns } : {}),
    ...(r.hostname ? { hostname: r.hostname } : {}),
    ...(r.podName ? { podName: String(r.podName) } : {}),
    ...(r.podNamespace ? { podNamespace: String(r.podNamespace) } : {}),
    ...(r.nicModel ? { nicModel: r.nicModel } : {}),
    ...(r.queues !== undefined && r.queues > 1 ? { queues: r.queues } : {}),
  };
  return { req: clean, nics };
}
