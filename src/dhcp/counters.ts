// The server's counters, one flat object of numbers (cheap to keep per server and to
// expose in tapmanager's status).

export interface DhcpCounters {
  received: number;
  /** malformed, truncated or oversized input (DecodeError) */
  decodeErrors: number;
  /** op is not BOOTREQUEST, or no message type (plain BOOTP is not served) */
  notDhcpRequest: number;
  /** a MAC this server has no lease for: never answered */
  unknownMac: number;
  /** a REQUEST/DECLINE/RELEASE naming another server: silently ignored (RFC 2131 4.3.2) */
  otherServer: number;
  /** a message type a server never receives, or a REQUEST that names no address */
  unexpected: number;
  discover: number;
  requestSelecting: number;
  requestInitReboot: number;
  /** ciaddr set, no server id / requested IP: RENEWING (unicast) or REBINDING (broadcast);
   * the socket does not see the destination address, and both are handled alike */
  requestRenewOrRebind: number;
  decline: number;
  release: number;
  inform: number;
  offer: number;
  ack: number;
  nak: number;
  /** options left out to fit the client's maximum message size */
  optionsDropped: number;
  sendErrors: number;
  broadcastFallbacks: number;
  /** bugs: an exception in the handler (logged at error) */
  internalErrors: number;
  /** log lines a guest caused (NAK, DECLINE, RELEASE, bound, send failures) left out by the rate limit */
  logLinesSuppressed: number;
}

export function newCounters(): DhcpCounters {
  return {
    received: 0,
    decodeErrors: 0,
    notDhcpRequest: 0,
    unknownMac: 0,
    otherServer: 0,
    unexpected: 0,
    discover: 0,
    requestSelecting: 0,
    requestInitReboot: 0,
    requestRenewOrRebind: 0,
    decline: 0,
    release: 0,
    inform: 0,
    offer: 0,
    ack: 0,
    nak: 0,
    optionsDropped: 0,
    sendErrors: 0,
    broadcastFallbacks: 0,
    internalErrors: 0,
    logLinesSuppressed: 0,
  };
}
