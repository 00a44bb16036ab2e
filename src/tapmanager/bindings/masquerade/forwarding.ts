// Forwarding as a masquerade NIC found it, and putting it back. IPv4 has one switch
// (net.ipv4.ip_forward); IPv6 has one per interface, plus "all" (writing it sets every
// interface and "default") and "default" (what new interfaces get): setup records all,
// default and each pod interface's, turns "all" on, and the undo writes "all" back, then
// default and each interface still there whose value differs. The NAT tables' comments
// carry the same (nat.ts) for the orphan collector, which has no record: "all" and
// "default" only (a comment holds 127 bytes), which restores the usual uniform case.
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
