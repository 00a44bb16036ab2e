// Numbers from the DHCP RFCs: ports, sizes, option codes and message types.

/** RFC 2131 4.1: servers listen on 67, clients on 68. */
export const SERVER_PORT = 67;
export const CLIENT_PORT = 68;

/** RFC 2131 2: fixed BOOTP header up to and including `file`. */
export const HEADER_SIZE = 236;
/** RFC 2131 3: 99.130.83.99 right after the header. */
export const MAGIC_COOKIE = 0x63825363;
export const OPTIONS_OFFSET = 240;
/** RFC 1542 2.1 / RFC 951: a BOOTP message is at least 300 bytes; some relays drop shorter ones. */
export const MIN_PACKET_SIZE = 300;
/** RFC 2131 2: every client accepts a 576-byte IP datagram, i.e. 548 bytes of DHCP after IP+UDP. */
export const MIN_MAX_MESSAGE = 576;
export const IP_UDP_HEADERS = 28;
/** Larger inputs are dropped as oversized: a DHCP message fits an Ethernet jumbo frame by far. */
export const MAX_PACKET_SIZE = 9000;

export const OP_BOOTREQUEST = 1;
export const OP_BOOTREPLY = 2;
/** RFC 2131 2, figure 2: the leftmost bit of `flags`. */
export const FLAG_BROADCAST = 0x8000;

/** RFC 2132 (and later RFCs where noted). */
export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  INTERFACE_MTU: 26,
  BROADCAST_ADDRESS: 28,
  NTP_SERVERS: 42,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER_NAME: 66,
  BOOTFILE_NAME: 67,
  RELAY_AGENT_INFO: 82, // RFC 3046
  DOMAIN_SEARCH: 119, // RFC 3397
  CLASSLESS_ROUTES: 121, // RFC 3442
  END: 255,
} as const;

/** RFC 2132 / RFC 3942: the site-specific option codes, whose meaning each site gives them. */
export const PRIVATE_OPTIONS = { first: 224, last: 254 } as const;

export function isPrivateOption(code: number): boolean {
  return code >= PRIVATE_OPTIONS.first && code <= PRIVATE_OPTIONS.last;
}

/** RFC 2132 9.6 */
export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

export const MESSAGE_TYPE_NAMES: Record<number, string> = {
  1: 'DISCOVER',
  2: 'OFFER',
  3: 'REQUEST',
  4: 'DECLINE',
  5: 'ACK',
  6: 'NAK',
  7: 'RELEASE',
  8: 'INFORM',
};
