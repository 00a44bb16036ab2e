// Numbers from RFC 8415 (DHCPv6), RFC 3646 (DNS options) and RFC 8415 11 (DUIDs).

/** RFC 8415 7.2: clients listen on 546, servers and relays on 547. */
export const CLIENT_PORT = 546;
export const SERVER_PORT = 547;
/** RFC 8415 7.1: All_DHCP_Relay_Agents_and_Servers, link-scoped. */
export const ALL_SERVERS = 'ff02::1:2';

/** Larger inputs are dropped as oversized: a DHCPv6 message to a server fits one jumbo frame by far. */
export const MAX_MESSAGE_SIZE = 9000;
/** msg-type(1) transaction-id(3) (RFC 8415 8). */
export const HEADER_SIZE = 4;

/** RFC 8415 7.3. */
export const MessageType = {
  SOLICIT: 1,
  ADVERTISE: 2,
  REQUEST: 3,
  CONFIRM: 4,
  RENEW: 5,
  REBIND: 6,
  REPLY: 7,
  RELEASE: 8,
  DECLINE: 9,
  RECONFIGURE: 10,
  INFORMATION_REQUEST: 11,
  RELAY_FORW: 12,
  RELAY_REPL: 13,
} as const;

export const MESSAGE_TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(MessageType).map(([k, v]) => [v, k.replace(/_/g, '-')]),
);

/** RFC 8415 21 and RFC 3646 3-4. */
export const Opt6 = {
  CLIENTID: 1,
  SERVERID: 2,
  IA_NA: 3,
  IA_TA: 4,
  IAADDR: 5,
  ORO: 6,
  PREFERENCE: 7,
  ELAPSED_TIME: 8,
  RELAY_MSG: 9,
  AUTH: 11,
  UNICAST: 12,
  STATUS_CODE: 13,
  RAPID_COMMIT: 14,
  USER_CLASS: 15,
  VENDOR_CLASS: 16,
  VENDOR_OPTS: 17,
  INTERFACE_ID: 18,
  RECONF_MSG: 19,
  RECONF_ACCEPT: 20,
  DNS_SERVERS: 23,
  DOMAIN_LIST: 24,
  IA_PD: 25,
  IAPREFIX: 26,
  INFORMATION_REFRESH_TIME: 32,
  SOL_MAX_RT: 82,
  INF_MAX_RT: 83,
} as const;

/** RFC 8415 21.13. */
export const Status = {
  SUCCESS: 0,
  UNSPEC_FAIL: 1,
  NO_ADDRS_AVAIL: 2,
  NO_BINDING: 3,
  NOT_ON_LINK: 4,
  USE_MULTICAST: 5,
  NO_PREFIX_AVAIL: 6,
} as const;

export const STATUS_NAMES: Record<number, string> = {
  0: 'Success',
  1: 'UnspecFail',
  2: 'NoAddrsAvail',
  3: 'NoBinding',
  4: 'NotOnLink',
  5: 'UseMulticast',
  6: 'NoPrefixAvail',
};

/** RFC 8415 11.1. */
export const DuidType = { LLT: 1, EN: 2, LL: 3, UUID: 4 } as const;
/** RFC 8415 11.2: a DUID is at most 128 bytes after its type. */
export const MAX_DUID_SIZE = 130;

export const INFINITY = 0xffffffff;
