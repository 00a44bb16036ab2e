// The slirp binding, domain side: QEMU's user-mode network stack (-netdev user) inside
// the emulator's own process, in the pod netns; no fd from the daemon. Each listed port
// is forwarded from the pod's IP to the guest (hostfwd), so what reaches podIP:port
// reaches the guest's port; the guest gets slirp's own address (10.0.2.15) by slirp's
// DHCP. A libvirt domain has no hostfwd for a user interface (libvirt forwards ports
// only for its passt backend): the <interface type='user'> it gets has none. Pure.
import { deviceArg } from '../models';
import { userInterface } from '../libvirt-xml';
import type { DomainBinding, DomainNic } from '../domain-types';

/** hostfwd=PROTO:PODIP:PORT-:PORT, one per port of each listed range. */
export function hostfwds(nic: DomainNic): string[] {
  const f = nic.hostfwd;
  if (!f) return [];
  return f.ports.flatMap((p) => {
    const out: string[] = [];
    for (let port = p.port; port <= (p.endPort ?? p.port); port++)
      out.push(`hostfwd=${p.protocol.toLowerCase()}:${f.ip}:${port}-:${port}`);
    return out;
  });
}

export const slirpDomain: DomainBinding = {
  name: 'slirp',

  fdCount() {
    return 0;
  },

  qemuArgs(nic, ids, _fds, json) {
    const nd = [`user,id=${ids.netdev}`, ...hostfwds(nic)].join(',');
    return ['-netdev', nd, '-device', deviceArg(nic, ids, json)];
  },

  libvirtInterface(nic: DomainNic) {
    return userInterface(nic);
  },
};
