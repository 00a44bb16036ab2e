// The one error the guest-network planner throws: bad input (EINVAL), naming the
// field it is about and, in the message, the value.

export class PlanError extends Error {
  readonly code = 'EINVAL';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'PlanError';
  }
}

/** JSON text of a value for an error message, cut to 200 characters. */
export function shown(v: unknown): string {
  const s = JSON.stringify(v ?? null) ?? String(v);
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}
