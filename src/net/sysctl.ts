// Per-interface IPv6 sysctls of a network namespace (/proc/sys/net/ipv6/conf/<if>/<key>):
// /proc/sys/net resolves to the namespace of the thread that opens the file, so the write
// happens inside a withNetns window.
import * as fs from 'node:fs';
import { withNetns } from '../native';

const KEY_RE = /^[a-z_0-9]+$/;

function confFile(ifname: string, key: string): string {
  if (!/^[^/\0\s]{1,15}$/.test(ifname) || ifname === '.' || ifname === '..') {
    throw new RangeError(`invalid interface name ${JSON.stringify(ifname)}`);
  }
  if (!KEY_RE.test(key)) throw new RangeError(`invalid sysctl key ${JSON.stringify(key)}`);
  return `/proc/sys/net/ipv6/conf/${ifname}/${key}`;
}

export function setIpv6Conf(netns: string, ifname: string, key: string, value: string): void {
  const file = confFile(ifname, key);
  withNetns(netns, () => fs.writeFileSync(file, value));
}

/**
 * Several writes, in order, in one namespace window. `skipMissing`: a file that is not
 * there (a kernel without IPv6, ipv6.disable=1) is skipped; any other failure stops the
 * writes and is thrown.
 */
export function setIpv6Confs(
  netns: string,
  writes: readonly { ifname: string; key: string; value: string }[],
  { skipMissing = false } = {},
): void {
  const files = writes.map((w) => ({ file: confFile(w.ifname, w.key), value: w.value }));
  withNetns(netns, () => writeAll(files, skipMissing));
}

/** As setIpv6Confs, in the namespace the calling thread is in (from inside a withNetns window). */
export function setIpv6ConfsHere(
  writes: readonly { ifname: string; key: string; value: string }[],
  { skipMissing = false } = {},
): void {
  writeAll(
    writes.map((w) => ({ file: confFile(w.ifname, w.key), value: w.value })),
    skipMissing,
  );
}

function writeAll(files: readonly { file: string; value: string }[], skipMissing: boolean): void {
  for (const { file, value } of files) {
    try {
      fs.writeFileSync(file, value);
    } catch (e) {
      if (!skipMissing || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

export function getIpv6Conf(netns: string, ifname: string, key: string): string {
  if (!/^[^/\0\s]{1,15}$/.test(ifname) || !KEY_RE.test(key)) throw new RangeError(`invalid sysctl ${ifname}/${key}`);
  return withNetns(netns, () => fs.readFileSync(`/proc/sys/net/ipv6/conf/${ifname}/${key}`, 'utf8').trim());
}
