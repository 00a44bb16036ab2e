// The passt binding, domain side: QEMU's stream netdev on the inherited fd tapwire handed
// over (the emulator's end of the socket pair passt serves; QEMU 7.2 takes it as
// addr.type=fd), and the spec's device. For a runtime that writes its own domain XML:
// libvirt has no way to take a socket fd for a passt interface (it starts its own passt
// in its own netns), so the element is libvirt's <interface type='user'> with the passt
// backend and the NIC's model and MAC; its port forwards are the pod's listed ports as
// tapwire's passt has them (the fds reply does not carry them: this element shows none).
// Pure.
import { deviceArg } from '../models';
import { userInterface } from '../libvirt-xml';
import type { DomainBinding, DomainNic } from '../domain-types';

export const passtDomain: DomainBinding = {
  name: 'passt',

  fdCount() {
    return 1;
  },

  qemuArgs(nic, ids, fds, json) {
    const nd = `stream,id=${ids.netdev},addr.type=fd,addr.str=${fds[0]}`;
    return ['-netdev', nd, '-device', deviceArg(nic, ids, json)];
  },

  libvirtInterface(nic: DomainNic) {
    return userInterface(nic, 'passt');
  },
};
