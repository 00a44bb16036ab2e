// Errors tapmanager reports to its callers: a stable code, a message that names the
// field and the value, and the field itself.
import { quote } from '../util/quote';
import type { ErrorBody } from './protocol';

export class TapError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'TapError';
  }

  toBody(): ErrorBody {
    return { code: this.code, message: this.message, ...(this.field !== undefined ? { field: this.field } : {}) };
  }
}

/** EINVAL naming the field and its value: `invalid <field> <value>: <why>`. */
export function badInput(field: string, value: unknown, why: string): TapError {
  return new TapError('EINVAL', `invalid ${field} ${quote(value)}: ${why}`, field);
}

/** Any thrown value as an ErrorBody (unknown failures become EIO with their message). */
export function toErrorBody(e: unknown): ErrorBody {
  if (e instanceof TapError) return e.toBody();
  const err = e as { code?: unknown; message?: unknown; field?: unknown };
  return {
    code: typeof err?.code === 'string' ? err.code : 'EIO',
    message: typeof err?.message === 'string' ? err.message : String(e),
    ...(typeof err?.field === 'string' ? { field: err.field } : {}),
  };
}
