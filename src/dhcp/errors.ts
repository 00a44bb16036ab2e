// Typed errors of the DHCP codec and server. A DecodeError is what any malformed,
// truncated or oversized input turns into; the server counts and debug-logs it and
// never lets it escape the socket handler. DhcpConfigError names the bad lease field.

export type DecodeReason =
  | 'truncated' // the input ends inside a field or an option
  | 'oversized' // larger than any DHCP message we accept
  | 'bad-cookie' // magic cookie is not 99.130.83.99 (RFC 2131 3)
  | 'bad-field' // a fixed header field has an impossible value
  | 'bad-option'; // an option value does not fit its type

export class DecodeError extends Error {
  readonly code = 'EDHCPDECODE';
  constructor(
    readonly reason: DecodeReason,
    message: string,
    /** option code, when the error is inside an option */
    readonly option?: number,
  ) {
    super(message);
    this.name = 'DecodeError';
  }
}

export class DhcpConfigError extends Error {
  readonly code = 'EINVAL';
  constructor(
    /** the offending field, e.g. "leases[0].classlessRoutes[1].dst" */
    readonly field: string,
    readonly value: unknown,
    why: string,
  ) {
    super(`invalid ${field} ${JSON.stringify(value)}: ${why}`);
    this.name = 'DhcpConfigError';
  }
}

/** Throws a DecodeError with reason 'bad-option' unless ok. */
export function checkOption(ok: boolean, code: number | undefined, what: string): asserts ok {
  if (!ok) throw new DecodeError('bad-option', what, code);
}
