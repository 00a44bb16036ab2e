// Typed errors of the DHCPv6 codec and server. A Dhcp6DecodeError is what any malformed,
// truncated or oversized input becomes; the server counts and debug-logs it and never
// lets it escape the socket handler. Dhcp6ConfigError names the bad lease field.
import { LeaseFieldError, WireDecodeError } from '../dhcp/errors';

export type Dhcp6DecodeReason =
  | 'truncated' // the input ends inside a field or an option
  | 'oversized' // larger than any DHCPv6 message we accept
  | 'relay' // a relay-agent message (RFC 8415 9): this server serves its own link only
  | 'bad-option'; // an option value does not fit its type

export class Dhcp6DecodeError extends WireDecodeError<Dhcp6DecodeReason> {
  readonly code = 'EDHCP6DECODE';
  override readonly name = 'Dhcp6DecodeError';
}

export class Dhcp6ConfigError extends LeaseFieldError {
  override readonly name = 'Dhcp6ConfigError';
}

/** Throws a Dhcp6DecodeError with reason 'bad-option' unless ok. */
export function checkOption(ok: boolean, code: number, what: string): asserts ok {
  if (!ok) throw new Dhcp6DecodeError('bad-option', what, code);
}
