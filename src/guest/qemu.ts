// QEMU's command line for tapwire's guest: a small pc machine under TCG, no default
// devices, no display or monitor, the kernel and initramfs given directly, the serial
// console on stdout or in a file, and NICs (virtio-net or another emulated model) on given
// netdevs (tap fds, or none when vmwrapper adds them from tapmanager's reply).
import { invalid } from './errors';

export const QEMU = '/usr/bin/qemu-system-x86_64';

export interface QemuNic {
  /** the -netdev value without its id, e.g. "tap,fd=3" or "tap,fds=3:4" */
  netdev: string;
  mac: string;
  /** queues (multiqueue virtio-net when > 1) */
  queues?: number;
  /** QEMU's device (default virtio-net-pci) */
  model?: QemuNicModel;
}

/** QEMU's devices for the network spec's NIC models (virtio, e1000, e1000e, ne2k_pci, pcnet, rtl8139). */
export const QEMU_NIC_MODELS = ['virtio-net-pci', 'e1000', 'e1000e', 'ne2k_pci', 'pcnet', 'rtl8139'] as const;
export type QemuNicModel = (typeof QEMU_NIC_MODELS)[number];

export interface QemuOptions {
  kernel: string;
  initrd: string;
  /** the kernel command line (guestCmdline()) */
  append: string;
  /** -name (default tapwire-guest) */
  name?: string;
  /** memory in MiB (default 256) */
  memMiB?: number;
  /** the serial console: QEMU's stdout, or a file */
  console: 'stdio' | { file: string };
  nics?: QemuNic[];
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** A value that goes into a QEMU option string (no commas: QEMU would split it). */
function optValue(field: string, v: unknown): string {
  if (typeof v !== 'string' || v === '' || v.includes(',') || /[\0\n]/.test(v)) {
    throw invalid(field, v, 'must be a non-empty string without commas or newlines');
  }
  return v;
}

export function qemuArgs(o: QemuOptions): string[] {
  const mem = o.memMiB ?? 256;
  if (!Number.isInteger(mem) || mem < 64 || mem > 65536)
    throw invalid('memMiB', mem, 'must be an integer from 64 to 65536');
  if (typeof o.append !== 'string' || /[\0\n]/.test(o.append)) throw invalid('append', o.append, 'must be one line');
  const args = [
    '-name', optValue('name', o.name ?? 'tapwire-guest'),
    '-machine', 'pc', '-accel', 'tcg', '-m', String(mem), '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-no-reboot',
    '-serial', o.console === 'stdio' ? 'stdio' : `file:${optValue('console.file', o.console?.file)}`,
    '-kernel', optValue('kernel', o.kernel),
    '-initrd', optValue('initrd', o.initrd),
    '-append', o.append,
  ]; // prettier-ignore
  (o.nics ?? []).forEach((n, i) => {
    if (typeof n.mac !== 'string' || !MAC.test(n.mac)) throw invalid(`nics[${i}].mac`, n.mac, 'must be a MAC address');
    const netdev: unknown = n.netdev;
    if (typeof netdev !== 'string' || !/^[a-z-]+(,[^,\s=]+=[^,\s]+)*$/.test(netdev) || /,id=/.test(netdev)) {
      throw invalid(`nics[${i}].netdev`, netdev, 'must be "TYPE,key=value,..." without an id (one is added)');
    }
    const model = n.model ?? 'virtio-net-pci';
    if (!QEMU_NIC_MODELS.includes(model))
      throw invalid(`nics[${i}].model`, model, `must be one of ${QEMU_NIC_MODELS.join(', ')}`);
    const q = n.queues ?? 1;
    if (!Number.isInteger(q) || q < 1 || q > 16 || (q > 1 && model !== 'virtio-net-pci'))
      throw invalid(`nics[${i}].queues`, q, 'must be an integer from 1 to 16 (above 1 with virtio-net-pci only)');
    const mq = q > 1 ? `,mq=on,vectors=${2 * q + 2}` : '';
    args.push('-netdev', `${netdev},id=twnet${i}`, '-device', `${model},netdev=twnet${i},mac=${n.mac}${mq}`);
  });
  return args;
}
