// Typed errors of the DHCPv6 codec and server. A Dhcp6DecodeError is what any malformed,
// truncated or oversized input becomes; the server counts and debug-logs it and never
// lets it escape the socket handler. Dhcp6ConfigError names the bad lease field.

export type Dhcp6DecodeReason =
  | 'truncated' // the input ends inside a field or an option
  | 'oversized' // larger than any DHCPv6 message we accept
  | 'relay' // a relay-agent message (RFC 8415 9): this server serves its own link only
  | 'bad-option'; // an option value does not fit its type

export class Dhcp6DecodeError extends Error {
  readonly code = 'EDHCP6DECODE';
  constructor(
    readonly reason: Dhcp6DecodeReason,
    message: string,
    /** option code, when the error is inside an option */
    readonly option?: number,
  ) {
    super(message);
    this.name = 'Dhcp6DecodeError';
  }
}

export class Dhcp6ConfigError extends Error {
  readonly code = 'EINVAL';
  constructor(
    /** the offending field, e.g. "lease.addresses[0]" */
    readonly field: string,
    readonly value: unknown,
    why: string,
  ) {
    super(`invalid ${field} ${JSON.stringify(value)}: ${why}`);
    this.name = 'Dhcp6ConfigError';
  }
}

/** Throws a Dhcp6DecodeError with reason 'bad-option' unless ok. */
export function checkOption(ok: boolean, code: number, what: string): asserts ok {
  if (!ok) throw new Dhcp6DecodeError('bad-option', what, code);
}
