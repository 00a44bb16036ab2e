// Errors tapmanager reports to its callers: a stable code, a message that names the
// field and the value, and the field itself.
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

/**
 * A request value as an error message shows it: JSON, cut to `max` characters with its
 * full size appended (`"abc…"(1048576 bytes)`), so an error about a 1 MB field stays short.
 */
export function quote(value: unknown, max = 128): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(typeof value); // too deep to print
  }
  if (text.length <= max) return text;
  return `${text.slice(0, max)}…(${Buffer.byteLength(text)} bytes)`;
}

/** EINVAL naming the field and its value: `invalid <field> <value>: <why>`. */
export function badInput(field: string, value: unknown, why: string): TapError {
  return new TapError('EINVAL', `invalid ${field} ${quote(value ?? null)}: ${why}`, field);
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
