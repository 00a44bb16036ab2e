// Typed errors of the DHCP codec and server. A DecodeError is what any malformed,
// truncated or oversized input turns into; the server counts and debug-logs it and
// never lets it escape the socket handler. DhcpConfigError names the bad lease field.

export type DecodeReason =
  | 'truncated' // the input ends inside a field or an option
  | 'oversized' // larger than any DHCP message we accept
  | 'bad-cookie' // magic cookie is not 99.130.83.99 (RFC 2131 3)
  | 'bad-field' // a fixed header field has an impossible value
  | 'bad-option'; // an option value does not fit its type

/**
 * What a DHCP-family codec (DHCP here, DHCPv6 in src/dhcp6) throws on malformed input:
 * why (`reason`, the codec's own list) and, inside an option, which option.
 */
export abstract class WireDecodeError<Reason extends string> extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
    /** option code, when the error is inside an option */
    readonly option?: number,
  ) {
    super(message);
  }
}

/** A bad field of a DHCP-family server's configuration, named with its value and why. */
export abstract class LeaseFieldError extends Error {
  readonly code = 'EINVAL';
  constructor(
    /** the offending field, e.g. "leases[0].classlessRoutes[1].dst" or "lease.addresses[0]" */
    readonly field: string,
    readonly value: unknown,
    why: string,
  ) {
    super(`invalid ${field} ${JSON.stringify(value)}: ${why}`);
  }
}

export class DecodeError extends WireDecodeError<DecodeReason> {
  readonly code = 'EDHCPDECODE';
  override readonly name = 'DecodeError';
}

export class DhcpConfigError extends LeaseFieldError {
  override readonly name = 'DhcpConfigError';
}

/** Throws a DecodeError with reason 'bad-option' unless ok. */
export function checkOption(ok: boolean, code: number | undefined, what: string): asserts ok {
  if (!ok) throw new DecodeError('bad-option', what, code);
}
