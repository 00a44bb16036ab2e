// A spec that cannot be used: every problem found, each with the path of the field, the
// value found there and what is wrong with it. Nothing is built from such a spec.
import { quote } from '../util/quote';

export interface SpecProblem {
  /** `interfaces[1].macAddress`; "" for the spec as a whole */
  path: string;
  /** the value found (absent when the field is missing) */
  value?: unknown;
  /** what is wrong, phrased to follow the value: `is not a MAC address` */
  reason: string;
}

/** `interfaces[1].macAddress: "zz:00" is not a MAC address` */
export function problemText(p: SpecProblem): string {
  const where = p.path || 'spec';
  return 'value' in p ? `${where}: ${quote(p.value)} ${p.reason}` : `${where}: ${p.reason}`;
}

export class SpecError extends Error {
  readonly code = 'ESPEC';
  constructor(readonly problems: SpecProblem[]) {
    const n = problems.length;
    super(`invalid network spec (${n} problem${n === 1 ? '' : 's'}): ${problems.map(problemText).join('; ')}`);
    this.name = 'SpecError';
  }
}

export function isSpecError(e: unknown): e is SpecError {
  return e instanceof SpecError;
}
