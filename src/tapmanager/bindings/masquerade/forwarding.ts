// Forwarding as a masquerade NIC found it, and putting it back. IPv4 has one switch
// (net.ipv4.ip_forward); IPv6 has one per interface, plus "all" (writing it sets every
// interface and "default") and "default" (what new interfaces get): setup records all,
// default and each pod interface's, turns "all" on, and the undo writes "all" back, then
// default and each interface still there whose value differs. The NAT tables' comments
// carry the same (nat.ts) for the orphan collector, which has no record: "all" and
// "default" only (a comment holds 127 bytes), which restores the usual uniform case.
import { readFileSync, writeFileSync } from 'node:fs';
import { withNetns } from '../../../native';
import { getIpv6Conf, setIpv6Conf } from '../../../net/sysctl';
import { UndoError } from '../errors';

const IP_FORWARD_RE = /^tapwire ip_forward=([01])$/;
const FORWARDING6_RE = /^tapwire forwarding all=([01]) default=([01])$/;

export function ipForwardComment(value: string): string {
  return `tapwire ip_forward=${value === '1' ? '1' : '0'}`;
}

export function forwarding6Comment(f: Record<string, string>): string {
  const bit = (v: string | undefined): string => (v === '1' ? '1' : '0');
  return `tapwire forwarding all=${bit(f.all)} default=${bit(f.default)}`;
}

/** The ip_forward value an ip table's comment recorded, if it is one of tapwire's. */
export function ipForwardFromComment(comment: string | undefined): string | undefined {
  return comment === undefined ? undefined : IP_FORWARD_RE.exec(comment)?.[1];
}

/** The IPv6 forwarding an ip6 table's comment recorded, if it is one of tapwire's. */
export function forwarding6FromComment(comment: string | undefined): Record<string, string> | undefined {
  const m = comment === undefined ? null : FORWARDING6_RE.exec(comment);
  return m ? { all: m[1]!, default: m[2]! } : undefined;
}

/** all, default and each of `ifnames` (those without IPv6 left out). */
export function readForwarding6(nsPath: string, ifnames: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['all', 'default', ...ifnames]) {
    try {
      out[name] = getIpv6Conf(nsPath, name, 'forwarding');
    } catch {
      // no IPv6 on that interface (or none at all): nothing to put back
    }
  }
  return out;
}

/** Puts IPv6 forwarding back as recorded; never throws. */
export function restoreForwarding6(nsPath: string, f: Record<string, string>): UndoError[] {
  const errors: UndoError[] = [];
  const get = (name: string): string | undefined => {
    try {
      return getIpv6Conf(nsPath, name, 'forwarding');
    } catch {
      return undefined; // gone, or no IPv6 there
    }
  };
  const set = (name: string, value: string): void => {
    try {
      setIpv6Conf(nsPath, name, 'forwarding', value);
    } catch (e) {
      errors.push(UndoError.of(`restore IPv6 forwarding of ${name} to`, value, e));
    }
  };
  const names = Object.keys(f).filter((n) => n !== 'all' && n !== 'default');
  const differs = ['all', 'default', ...names].some(
    (n) => f[n] !== undefined && get(n) !== undefined && get(n) !== f[n],
  );
  if (!differs) return errors;
  if (f.all !== undefined) set('all', f.all);
  if (f.default !== undefined && get('default') !== f.default) set('default', f.default);
  for (const n of names) {
    const now = get(n);
    if (now !== undefined && now !== f[n]) set(n, f[n]!);
  }
  return errors;
}

/**
 * For the orphan collector: puts forwarding back as the NAT tables' comments say the
 * setup found it (`ip4`: the ip table's, `ip6`: the ip6 table's); says what it did.
 */
export function restoreFromComments(nsPath: string, ip4: string | undefined, ip6: string | undefined): string[] {
  const done: string[] = [];
  const v4 = ipForwardFromComment(ip4);
  if (v4 !== undefined) {
    const now = withNetns(nsPath, () => readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim());
    if (now !== v4) {
      withNetns(nsPath, () => writeFileSync('/proc/sys/net/ipv4/ip_forward', v4));
      done.push(`ip_forward=${v4}`);
    }
  }
  const v6 = forwarding6FromComment(ip6);
  if (v6) {
    const errors = restoreForwarding6(nsPath, v6);
    if (errors.length) throw errors[0]!;
    done.push(`IPv6 forwarding all=${v6.all} default=${v6.default}`);
  }
  return done;
}
