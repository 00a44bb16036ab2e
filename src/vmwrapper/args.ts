// Argument rewriting for vmwrapper: the QEMU options that attach the guest NICs
// tapmanager described to the tap fds it handed over, appended after libvirt's own
// arguments (which stay untouched). Pure: no I/O, no native calls.
//
// Each NIC's pair is written by the domain side of its binding (tapmanager/bindings/,
// bridge/domain.ts for the bridge binding), in the daemon's (the spec's) order.
// Per bridge NIC N (ids made unique against every id already in argv):
//   -netdev tap,id=tapwireN,fd=F                              one queue
//   -netdev tap,id=tapwireN,fds=F1:F2:..                      multiqueue (QEMU infers the
//                                                             queue count; queues= is refused with fds=)
//   ...,vhost=on,vhostfd=V / vhostfds=V1:V2:..                only when the daemon offers vhost
//   -device MODEL,netdev=tapwireN,mac=MAC,id=tapwire-nicN[,mq=on,vectors=2q+2]
//
// PCI slots: QEMU creates key=value -device options before JSON ones, so a key=value NIC
// appended after libvirt's JSON devices would take the first free slot before libvirt's
// explicitly addressed balloon does ("slot 2 function 0 not available"). When argv
// already carries JSON -device options, the NIC is written as JSON too, so it is created
// after them and gets a free slot. No explicit bus/addr is ever chosen here.
import { isIpv4 } from '../net/ipv4';
import { parseMac } from '../net/mac';
import { domainBinding, type DomainBinding } from '../tapmanager/bindings/domain';
import { NIC_NAME_RE } from '../tapmanager/bindings/names';

/** One guest NIC as the daemon describes it (FdsResult.nics[i]); no binding: bridge (older daemons). */
export interface WrapperNic {
  name?: string;
  binding?: string;
  mac: string;
  model: string;
  queues: number;
  vhost: boolean;
  /** slirp: the ports to forward from the pod IP */
  hostfwd?: { ip: string; ports: { protocol: 'TCP' | 'UDP'; port: number; endPort?: number }[] };
}

function domainOf(nic: WrapperNic): DomainBinding {
  const d = domainBinding(nic.binding ?? 'bridge');
  if (!d) throw new ArgsError(`NIC binding ${JSON.stringify(nic.binding)} has no domain side here`, 'binding');
  return d;
}

export class ArgsError extends Error {
  readonly code = 'EINVAL';
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'ArgsError';
  }
}

// A QEMU device driver name: no commas, quotes or '=' that could smuggle options in.
const MODEL_RE = /^[a-z0-9][a-z0-9_.-]{0,63}$/i;
/** Most queues QEMU accepts on one tap netdev (MAX_TAP_QUEUES in net/tap.c is 1024; virtio caps lower). */
export const MAX_QUEUES = 256;

/** Models that take mq=on,vectors=... (virtio-net over PCI). */
export function isMultiqueueModel(model: string): boolean {
  return model === 'virtio-net-pci' || model.startsWith('virtio-net-pci-');
}

/** Number of fds the daemon must send for these NICs: queues tap fds, plus as many vhost fds when vhost. */
export function expectedFdCount(nics: readonly WrapperNic[]): number {
  return nics.reduce((n, nic) => n + domainOf(nic).fdCount({ ...nic, binding: nic.binding ?? 'bridge' }), 0);
}

/** A slirp NIC's forwards: an IPv4 address, ports 1-65535 (ranges in order), TCP or UDP; at most 256 ports in all. */
function checkHostfwd(v: unknown, bad: (field: string, why: string) => ArgsError): NonNullable<WrapperNic['hostfwd']> {
  const h = (typeof v === 'object' && v !== null ? v : {}) as { ip?: unknown; ports?: unknown };
  if (!isIpv4(h.ip)) throw bad('hostfwd', 'ip must be an IPv4 address');
  if (!Array.isArray(h.ports)) throw bad('hostfwd', 'ports must be a list');
  const port = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 65535;
  let count = 0;
  const ports = h.ports.map((p: unknown) => {
    const o = (typeof p === 'object' && p !== null ? p : {}) as Record<string, unknown>;
    if (!port(o.port) || (o.endPort !== undefined && (!port(o.endPort) || o.endPort < o.port)))
      throw bad('hostfwd', 'ports must be 1-65535, a range ending at or after its start');
    if (o.protocol !== 'TCP' && o.protocol !== 'UDP') throw bad('hostfwd', 'protocol must be TCP or UDP');
    count += (typeof o.endPort === 'number' ? o.endPort : o.port) - o.port + 1;
    const protocol: 'TCP' | 'UDP' = o.protocol;
    return { protocol, port: o.port, ...(typeof o.endPort === 'number' ? { endPort: o.endPort } : {}) };
  });
  if (count > 256) throw bad('hostfwd', `forwards ${count} ports, over 256`);
  return { ip: h.ip, ports };
}

/** Checks one NIC description; throws ArgsError naming the field and the value. */
export function checkNic(nic: unknown, i: number): WrapperNic {
  const n = (typeof nic === 'object' && nic !== null ? nic : {}) as Record<string, unknown>;
  const bad = (field: string, why: string): ArgsError =>
    new ArgsError(`invalid nics[${i}].${field} ${JSON.stringify(n[field] ?? null)}: ${why}`, `nics[${i}].${field}`);
  const mac = parseMac(n.mac);
  if (mac === undefined) throw bad('mac', 'must be a MAC address aa:bb:cc:dd:ee:ff');
  if (typeof n.model !== 'string' || !MODEL_RE.test(n.model)) throw bad('model', 'must be a QEMU device name');
  const q = n.queues;
  if (typeof q !== 'number' || !Number.isInteger(q) || q < 1 || q > MAX_QUEUES) {
    throw bad('queues', `must be an integer 1..${MAX_QUEUES}`);
  }
  if (q > 1 && !isMultiqueueModel(n.model)) throw bad('queues', `model "${n.model}" has a single queue`);
  if (n.vhost !== undefined && typeof n.vhost !== 'boolean') throw bad('vhost', 'must be a boolean');
  if (n.binding !== undefined && (typeof n.binding !== 'string' || !domainBinding(n.binding)))
    throw bad('binding', 'is not a binding this vmwrapper can attach');
  if (n.name !== undefined && (typeof n.name !== 'string' || !NIC_NAME_RE.test(n.name)))
    throw bad('name', 'must be 1-63 characters of [A-Za-z0-9_.-], starting with a letter or digit');
  const hostfwd = n.hostfwd === undefined ? undefined : checkHostfwd(n.hostfwd, bad);
  return {
    ...(hostfwd ? { hostfwd } : {}),
    ...(typeof n.name === 'string' ? { name: n.name } : {}),
    ...(typeof n.binding === 'string' ? { binding: n.binding } : {}),
    mac,
    model: n.model,
    queues: q,
    vhost: n.vhost === true,
  };
}

/** Every `id` already used in argv, from key=value options (`...,id=x,...`) and JSON ones (`{"id":"x"}`). */
export function usedIds(argv: readonly string[]): Set<string> {
  const ids = new Set<string>();
  for (const arg of argv) {
    if (arg.startsWith('{')) {
      try {
        const o = JSON.parse(arg) as Record<string, unknown>;
        if (typeof o.id === 'string') ids.add(o.id);
      } catch {
        /* not JSON after all: fall through to the key=value scan */
      }
    }
    for (const m of arg.matchAll(/(?:^|,)id=([^,]*)/g)) ids.add(m[1]!);
  }
  return ids;
}

/** True when argv holds a JSON `-device {...}` (libvirt with QEMU >= 6.2 writes them). */
export function usesJsonDevices(argv: readonly string[]): boolean {
  for (let i = 0; i + 1 < argv.length; i++) {
    if ((argv[i] === '-device' || argv[i] === '--device') && argv[i + 1]!.startsWith('{')) return true;
  }
  return false;
}

/**
 * The arguments to append for nics, whose fds (tap fds per NIC in order, then that
 * NIC's vhost fds when it has vhost) are given in order. Throws ArgsError on a count
 * mismatch.
 */
export function netArgs(argv: readonly string[], nics: readonly WrapperNic[], fds: readonly number[]): string[] {
  const want = expectedFdCount(nics);
  if (fds.length !== want) {
    throw new ArgsError(`daemon sent ${fds.length} fds for ${nics.length} NICs that need ${want}`, 'fds');
  }
  const ids = usedIds(argv);
  const json = usesJsonDevices(argv);
  const out: string[] = [];
  let next = 0;
  let at = 0;
  for (const nic of nics) {
    while (ids.has(`tapwire${next}`) || ids.has(`tapwire-nic${next}`)) next++;
    const netdev = `tapwire${next}`;
    const devId = `tapwire-nic${next}`;
    ids.add(netdev).add(devId);
    next++;
    const d = { ...nic, binding: nic.binding ?? 'bridge' };
    const binding = domainOf(nic);
    const count = binding.fdCount(d);
    out.push(...binding.qemuArgs(d, { netdev, device: devId }, fds.slice(at, at + count), json));
    at += count;
  }
  return out;
}
