// The prefix lengths of an interface's addresses as the kernel has them in a pod's netns
// (go-cni, and so containerd's status, keeps addresses without them): tapmanager's own veth
// reader, which it runs before it touches the veth.
import { readVethSnapshot } from '../../tapmanager/plan/read-veth';

export async function kernelPrefixes(netnsPath: string, ifname: string): Promise<Map<string, number>> {
  const veth = await readVethSnapshot(netnsPath, ifname);
  return new Map(veth.addrs.map((a) => [a.address, a.prefixLen]));
}
