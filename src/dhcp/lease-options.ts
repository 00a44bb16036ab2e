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
  const m = req.options.get(Opt.MAX_MESSAGE_SIZE); // a malformed one counts as absent
  return Math.max(MIN_MAX_MESSAGE, m?.length === 2 ? m.readUInt16BE(0) : 0) - IP_UDP_HEADERS;
}

// Which codes the reply being built still takes, by code: set, then cleared as each is
// put (one reply at a time: nothing between awaits). A table, not a Set per reply: this
// runs for every OFFER and ACK and allocated a Set, arrays and a decoded list each time.
const wanted = new Uint8Array(256);
const NONE_DROPPED: readonly number[] = Object.freeze([]);

function take(reply: DhcpPacket, values: ReadonlyMap<number, Buffer>, code: number): void {
  if (wanted[code] === 0) return;
  wanted[code] = 0;
  const b = values.get(code);
  if (b) reply.options.set(code, b);
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
): readonly number[] {
  // option 55 as its bytes (an empty one is malformed: as if there were none)
  const listed = req.options.get(Opt.PARAMETER_REQUEST_LIST);
  const prl = listed !== undefined && listed.length > 0 ? listed : undefined;
  const v = lease.values;
  if (lease.header.file) reply.file = lease.header.file;
  if (lease.header.sname) reply.sname = lease.header.sname;
  try {
    for (const c of ALWAYS) wanted[c] = 1;
    if (withLease) for (const c of LEASE_TIMING) wanted[c] = 1;
    if (prl) {
      for (let i = 0; i < prl.length; i++) if (onRequest(prl[i]!)) wanted[prl[i]!] = 1;
      // the client's order first (RFC 2132 9.8: "MUST try"), then what it did not ask for
      for (let i = 0; i < prl.length; i++) take(reply, v, prl[i]!);
    } else {
      for (const c of ON_REQUEST) wanted[c] = 1;
      for (const c of v.keys()) if (isPrivateOption(c)) wanted[c] = 1;
    }
    for (const c of ALWAYS) take(reply, v, c);
    if (withLease) for (const c of LEASE_TIMING) take(reply, v, c);
    if (!prl) {
      for (const c of ON_REQUEST) take(reply, v, c);
      for (const c of v.keys()) take(reply, v, c);
    }
  } finally {
    wanted.fill(0);
  }

  const limit = maxReplySize(req);
  if (reply.encodedSize() <= limit) return NONE_DROPPED;
  // optional options, least preferred last: the client's order, or without a list the spec's
  const optional = prl ? Array.from(prl).filter(onRequest) : [...ON_REQUEST, ...[...v.keys()].filter(isPrivateOption)];
  const dropped: number[] = [];
  for (let i = optional.length - 1; i >= 0 && reply.encodedSize() > limit; i--) {
    if (reply.options.delete(optional[i]!)) dropped.push(optional[i]!);
  }
  return dropped;
}
