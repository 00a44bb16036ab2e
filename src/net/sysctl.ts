// Per-interface IPv6 sysctls of a network namespace (/proc/sys/net/ipv6/conf/<if>/<key>):
// /proc/sys/net resolves to the namespace of the thread that opens the file, so the write
// happens inside a withNetns window.
import * as fs from 'node:fs';
import { withNetns } from '../native';

const KEY_RE = /^[a-z_0-9]+$/;

export function setIpv6Conf(netns: string, ifname: string, key: string, value: string): void {
  if (!/^[^/\0\s]{1,15}$/.test(ifname) || ifname === '.' || ifname === '..') {
    throw new RangeError(`invalid interface name ${JSON.stringify(ifname)}`);
  }
  if (!KEY_RE.test(key)) throw new RangeError(`invalid sysctl key ${JSON.stringify(key)}`);
  withNetns(netns, () => fs.writeFileSync(`/proc/sys/net/ipv6/conf/${ifname}/${key}`, value));
}

export function getIpv6Conf(netns: string, ifname: string, key: string): string {
  if (!/^[^/\0\s]{1,15}$/.test(ifname) || !KEY_RE.test(key)) throw new RangeError(`invalid sysctl ${ifname}/${key}`);
  return withNetns(netns, () => fs.readFileSync(`/proc/sys/net/ipv6/conf/${ifname}/${key}`, 'utf8').trim());
}
