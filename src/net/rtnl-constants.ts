// rtnetlink numbers from <linux/rtnetlink.h>, <linux/if_addr.h> and <linux/socket.h>, in
// one place for the encoding (rtnl-messages.ts) and the decoding (rtnl-parse.ts) halves.

export const AF_INET = 2;
export const AF_INET6 = 10;

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;

/** struct rtmsg's rtm_flags: a cached clone, not a route of the table */
export const RTM_F_CLONED = 0x200;
export const RT_TABLE_MAIN = 254;

/** route attributes (enum rtattr_type_t) */
export const RTA = {
  DST: 1,
  SRC: 2,
  OIF: 4,
  GATEWAY: 5,
  PRIORITY: 6,
  PREFSRC: 7,
  METRICS: 8,
  MULTIPATH: 9,
  TABLE: 15,
  VIA: 18,
} as const;

/** route metrics, nested in RTA_METRICS */
export const RTAX = { MTU: 2, ADVMSS: 8 } as const;

/** next-hop flag, also in rtm_flags */
export const RTNH_F_ONLINK = 4;

/** address attributes */
export const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3, BROADCAST: 4, CACHEINFO: 6, FLAGS: 8 } as const;

/** link attributes (IFLA_*) */
export const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, MASTER: 10, LINKINFO: 18, IFALIAS: 20, GROUP: 27 } as const;
/** nested in IFLA_LINKINFO */
export const IFLA_INFO = { KIND: 1, DATA: 2 } as const;
/** ifi_flags: the link is up (administratively) */
export const IFF_UP = 1;
