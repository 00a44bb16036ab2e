// The domain side of the binding contract (types.ts has the pod side): what vmwrapper
// and tapctl ask of a binding to put its NIC into the guest. Pure.

/** One guest NIC as the daemon describes it in the fds reply (FdsResult.nics[i]). */
export interface DomainNic {
  name?: string;
  binding: string;
  mac: string;
  /** QEMU device */
  model: string;
  queues: number;
  vhost: boolean;
  /** the tap's name in the pod netns (bindings that hand over a tap) */
  tap?: string;
  /** slirp: the ports forwarded from the pod IP to the guest */
  hostfwd?: { ip: string; ports: { protocol: 'TCP' | 'UDP'; port: number; endPort?: number }[] };
}

export interface DomainBinding {
  readonly name: string;
  /** How many of the handed-over fds are this NIC's (they come in NIC order). */
  fdCount(nic: DomainNic): number;
  /**
   * The emulator's arguments for the NIC: one -netdev/-device pair. `ids` are unique in
   * the whole command line; `fds` are this NIC's; `json`: write -device as JSON (libvirt
   * with QEMU >= 6.2 does, see vmwrapper/args.ts).
   */
  qemuArgs(nic: DomainNic, ids: { netdev: string; device: string }, fds: readonly number[], json: boolean): string[];
  /** The equivalent libvirt <interface> element, for a runtime that writes its own domain XML. */
  libvirtInterface(nic: DomainNic): string;
}
