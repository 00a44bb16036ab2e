// The DHCPv6 server's counters, one flat object of numbers (exposed in tapmanager's status).

export interface Dhcp6Counters {
  received: number;
  /** malformed, truncated or oversized input (Dhcp6DecodeError) */
  decodeErrors: number;
  /** RELAY-FORW / RELAY-REPL: this server is alone on its link and serves no relay */
  relay: number;
  /** a message type a server never receives (ADVERTISE, REPLY, RECONFIGURE, unknown) */
  unexpected: number;
  /** a message missing an option RFC 8415 16 requires, or carrying one it forbids: discarded */
  invalid: number;
  /** a REQUEST/RENEW/RELEASE/DECLINE/INFORMATION-REQUEST naming another server: discarded (RFC 8415 16) */
  otherServer: number;
  solicit: number;
  request: number;
  confirm: number;
  renew: number;
  rebind: number;
  release: number;
  decline: number;
  informationRequest: number;
  advertise: number;
  reply: number;
  /** IAs answered NoBinding (RENEW/RELEASE/DECLINE for an IA this server has no binding of) */
  noBinding: number;
  /** IAs answered NoAddrsAvail / NoPrefixAvail (a second IA_NA, IA_TA, IA_PD) */
  noAddrsAvail: number;
  /** CONFIRMs answered NotOnLink */
  notOnLink: number;
  sendErrors: number;
  /** bugs: an exception in the handler (logged at error) */
  internalErrors: number;
  logLinesSuppressed: number;
}

export function newCounters6(): Dhcp6Counters {
  return {
    received: 0,
    decodeErrors: 0,
    relay: 0,
    unexpected: 0,
    invalid: 0,
    otherServer: 0,
    solicit: 0,
    request: 0,
    confirm: 0,
    renew: 0,
    rebind: 0,
    release: 0,
    decline: 0,
    informationRequest: 0,
    advertise: 0,
    reply: 0,
    noBinding: 0,
    noAddrsAvail: 0,
    notOnLink: 0,
    sendErrors: 0,
    internalErrors: 0,
    logLinesSuppressed: 0,
  };
}
