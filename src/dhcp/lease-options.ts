// Which options a reply carries (RFC 2131 4.3.1): always 53 and 54; with a lease 51, 58
// and 59 (T1/T2 are part of the lease timing, so they always go with it); always 1; 3
// whenever there are routers (a client asking for 121 gets 3 too, RFC 3442); everything
// else (6, 12, 15, 26, 28, 119, 121, and a spec's 42, 66, 67 and 224-254) only if asked
// for in the parameter request list (55), or when there is none. If the reply would
// exceed what the client accepts (57, at least 576, RFC 2132 9.10), optional options are
// dropped, the client's least preferred first (without a list: the spec's first). The
// header's `file` and `sname` (a spec's boot file and TFTP server) go in every reply of
// the lease: they are fixed fields, they never make a reply larger.
import { IP_UDP_HEADERS, isPrivateOption, MIN_MAX_MESSAGE, Opt } from './constants';
import type { ResolvedLease } from './lease';
import { ParameterListOption, Uint16Option } from './options';
import type { DhcpPacket } from './packet';

const ALWAYS: number[] = [Opt.SUBNET_MASK, Opt.ROUTER];
const LEASE_TIMING: number[] = [Opt.LEASE_TIME, Opt.RENEWAL_TIME, Opt.REBINDING_TIME];
const ON_REQUEST: number[] = [
  Opt.CLASSLESS_ROUTES,
  Opt.DNS,
  Opt.DOMAIN_SEARCH,
  Opt.DOMAIN_NAME,
  Opt.HOSTNAME,
  Opt.INTERFACE_MTU,
  Opt.BROADCAST_ADDRESS,
  Opt.NTP_SERVERS,
  Opt.TFTP_SERVER_NAME,
  Opt.BOOTFILE_NAME,
];

function onRequest(code: number): boolean {
  return ON_REQUEST.includes(code) || isPrivateOption(code);
}

/** The largest DHCP message (UDP payload) this request's sender accepts. */
export function maxReplySize(req: DhcpPacket): number {
  const m = req.getOr(Opt.MAX_MESSAGE_SIZE, Uint16Option, undefined);
  return Math.max(MIN_MAX_MESSAGE, m?.value ?? 0) - IP_UDP_HEADERS;
}

/**
 * Adds the lease's options to reply as req asks. withLease=false for DHCPINFORM (no
 * lease time, RFC 2131 4.3.5). Returns the codes dropped to fit the size limit.
 */
export function addLeaseOptions(
  reply: DhcpPacket,
  req: DhcpPacket,
  lease: ResolvedLease,
  withLease: boolean,
): number[] {
  const prl = req.getOr(Opt.PARAMETER_REQUEST_LIST, ParameterListOption, undefined);
  const v = lease.values;
  const put = (code: number): void => {
    const b = v.get(code);
    if (b) reply.options.set(code, b);
  };
  const optional = prl ? prl.codes.filter(onRequest) : [...ON_REQUEST, ...[...v.keys()].filter(isPrivateOption)];
  if (lease.header.file) reply.file = lease.header.file;
  if (lease.header.sname) reply.sname = lease.header.sname;
  const sent = new Set([...ALWAYS, ...(withLease ? LEASE_TIMING : []), ...optional]);
  // the client's order first (RFC 2132 9.8: "MUST try"), then what it did not ask for
  for (const c of prl?.codes ?? []) if (sent.delete(c)) put(c);
  sent.forEach(put);

  const dropped: number[] = [];
  const limit = maxReplySize(req);
  for (let i = optional.length - 1; i >= 0 && reply.encodedSize() > limit; i--) {
    if (reply.options.delete(optional[i]!)) dropped.push(optional[i]!);
  }
  return dropped;
}
