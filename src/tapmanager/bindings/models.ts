// Guest NIC models: the spec's names (KubeVirt's `model`), the QEMU device each one is,
// and the libvirt <model type> for it. Pure.

/** spec model -> QEMU -device driver */
export const NIC_MODELS = {
  virtio: 'virtio-net-pci',
  e1000: 'e1000',
  e1000e: 'e1000e',
  ne2k_pci: 'ne2k_pci',
  pcnet: 'pcnet',
  rtl8139: 'rtl8139',
} as const;
export type SpecModel = keyof typeof NIC_MODELS;
export const SPEC_MODELS = Object.keys(NIC_MODELS) as SpecModel[];

/** The QEMU device for a spec model. */
export function qemuDevice(model: SpecModel): string {
  return NIC_MODELS[model];
}

/** The libvirt <model type='...'/> for a QEMU device: the spec name when it has one, else the device itself. */
export function libvirtModel(device: string): string {
  const hit = SPEC_MODELS.find((m) => NIC_MODELS[m] === device);
  return hit ?? device;
}

/**
 * QEMU's -device value for a guest NIC: JSON (typed options, for libvirt-era command lines)
 * or key=value; `vectors` turns on multiqueue with that many MSI-X vectors.
 */
export function deviceArg(
  nic: { model: string; mac: string },
  ids: { netdev: string; device: string },
  json: boolean,
  vectors?: number,
): string {
  if (json) {
    const mq = vectors ? { mq: true, vectors } : {};
    return JSON.stringify({ driver: nic.model, netdev: ids.netdev, mac: nic.mac, id: ids.device, ...mq });
  }
  const mq = vectors ? `,mq=on,vectors=${vectors}` : '';
  return `${nic.model},netdev=${ids.netdev},mac=${nic.mac},id=${ids.device}${mq}`;
}
