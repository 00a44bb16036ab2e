// DNS names: the one rule every layer checks a hostname, search domain or domain against.
// RFC 1123 2.1 on RFC 1035 2.3.1: a label is 1-63 letters, digits and '-', neither starting
// nor ending with '-' (a leading digit is allowed, so an all-digit label is one); a name is
// labels joined by '.', at most 253 characters, optionally ending with the root '.'.
// Two knobs, each site picking what its peer may send: `underscore` admits '_' anywhere in a
// label (service labels, and the cluster domains some clusters use), `maxLength` tightens the
// total (a hostname: 63 bytes, the kubelet's HOST_NAME_MAX less the NUL).

export const DNS_LABEL_MAX = 63;
export const DNS_NAME_MAX = 253;

export interface DnsNameRule {
  /** '_' allowed in labels (default false) */
  underscore?: boolean;
  /** a trailing root '.' allowed (default false); it does not count against maxLength */
  rootDot?: boolean;
  /** at most this many characters (default and upper bound 253) */
  maxLength?: number;
}

const LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const LABEL_UNDERSCORE_RE = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

export function isDnsLabel(s: string, underscore = false): boolean {
  return (underscore ? LABEL_UNDERSCORE_RE : LABEL_RE).test(s);
}

export function isDnsName(v: unknown, rule: DnsNameRule = {}): v is string {
  if (typeof v !== 'string') return false;
  const name = rule.rootDot && v.endsWith('.') ? v.slice(0, -1) : v;
  const max = Math.min(rule.maxLength ?? DNS_NAME_MAX, DNS_NAME_MAX);
  if (name.length === 0 || name.length > max) return false;
  return name.split('.').every((l) => isDnsLabel(l, rule.underscore));
}

/** The rule in words, for an error message. */
export function dnsNameRule(rule: DnsNameRule = {}): string {
  const chars = rule.underscore ? 'letters, digits, "_" and inner "-"' : 'letters, digits and inner "-"';
  const max = Math.min(rule.maxLength ?? DNS_NAME_MAX, DNS_NAME_MAX);
  return `labels of ${chars}, 1-${DNS_LABEL_MAX} characters, joined by ".", at most ${max} characters`;
}
