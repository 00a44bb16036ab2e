// Errors of the guest layer (building tapwire's guest image, its command line and QEMU
// args). A boot that goes wrong is not an error but a verdict with problems (boot.ts).
// Callers test `code`, never the text.

export type GuestErrorCode =
  /** a package, module or file the image needs is missing or unusable */
  | 'EBUILD'
  /** apt could not resolve or download a package */
  | 'EAPT'
  /** an option for the guest (kernel command line, QEMU args) is invalid */
  | 'EINVAL';

export class GuestError extends Error {
  readonly code: GuestErrorCode;
  constructor(code: GuestErrorCode, message: string) {
    super(message);
    this.name = 'GuestError';
    this.code = code;
  }
}

/** A bad option: names the field and the value. */
export function invalid(field: string, value: unknown, why: string): GuestError {
  return new GuestError('EINVAL', `invalid ${field} ${JSON.stringify(value)}: ${why}`);
}
