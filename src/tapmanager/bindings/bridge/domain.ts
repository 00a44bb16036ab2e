// The bridge binding, domain side: the guest NIC is QEMU's tap netdev on the fds the
// daemon handed over (one per queue; vhost fds after them when offered), with the
// spec's model and MAC; for a runtime that writes its own domain XML, the libvirt
// <interface type='ethernet'> on the tap by name (the tap lives in the pod's netns,
// made by tapwire: managed='no'). Pure: no I/O.
import { deviceArg, libvirtModel } from '../models';
import { aliasLines, xmlAttr } from '../libvirt-xml';
import type { DomainBinding, DomainNic } from '../domain-types';

/** virtio-net wants 2 vectors per queue pair plus config and control. */
function vectors(queues: number): number {
  return queues > 1 ? 2 * queues + 2 : 0;
}

export const bridgeDomain: DomainBinding = {
  name: 'bridge',

  fdCount(nic) {
    return nic.queues * (nic.vhost ? 2 : 1);
  },

  qemuArgs(nic, ids, fds, json) {
    const taps = fds.slice(0, nic.queues);
    const vhosts = nic.vhost ? fds.slice(nic.queues, 2 * nic.queues) : [];
    let nd = `tap,id=${ids.netdev},`;
    nd += nic.queues === 1 ? `fd=${taps[0]}` : `fds=${taps.join(':')}`;
    if (nic.vhost) nd += nic.queues === 1 ? `,vhost=on,vhostfd=${vhosts[0]}` : `,vhost=on,vhostfds=${vhosts.join(':')}`;
    return ['-netdev', nd, '-device', deviceArg(nic, ids, json, vectors(nic.queues))];
  },

  libvirtInterface(nic: DomainNic) {
    const lines = [
      `<interface type='ethernet'>`,
      `  <mac address='${xmlAttr(nic.mac)}'/>`,
      `  <target dev='${xmlAttr(nic.tap ?? '')}' managed='no'/>`,
      `  <model type='${xmlAttr(libvirtModel(nic.model))}'/>`,
      ...(nic.queues > 1 ? [`  <driver name='${nic.vhost ? 'vhost' : 'qemu'}' queues='${nic.queues}'/>`] : []),
      ...aliasLines(nic),
      `</interface>`,
    ];
    return lines.join('\n');
  },
};
