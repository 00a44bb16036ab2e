// Token buckets by kind, for anything a peer can make us do too often (log lines first of
// all): each kind may pass `burst` times at once, then once per `intervalMs`; what may not
// pass is counted, and the count is handed to the next event of that kind that passes, so
// a flood leaves one line per interval saying how many were left out. No timers: refill
// is computed from the clock when an event comes.

export interface RateLimitOptions {
  /** events of one kind that pass back to back (the bucket's size) */
  burst: number;
  /** then one more per interval */
  intervalMs: number;
}

export const DEFAULT_LOG_LIMIT: RateLimitOptions = { burst: 10, intervalMs: 10_000 };

interface Bucket {
  tokens: number;
  /** when `tokens` was last brought up to date */
  at: number;
  /** events refused since the last one that passed */
  suppressed: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** events refused, all kinds, since the limiter was made */
  suppressedTotal = 0;

  constructor(
    private readonly o: RateLimitOptions = DEFAULT_LOG_LIMIT,
    /** ms; monotonic by default */
    private readonly clock: () => number = () => performance.now(),
  ) {
    if (!(o.burst >= 1) || !(o.intervalMs > 0)) throw new RangeError('rate limit: burst >= 1 and intervalMs > 0');
  }

  /**
   * One event of `kind` (a fixed set of names: each gets a bucket that is never freed).
   * Returns undefined when it must not pass, else how many of that kind were refused
   * since the last one that passed.
   */
  take(kind: string, now = this.clock()): number | undefined {
    let b = this.buckets.get(kind);
    if (!b) this.buckets.set(kind, (b = { tokens: this.o.burst, at: now, suppressed: 0 }));
    // a clock that went back refills nothing
    const elapsed = Math.max(0, now - b.at);
    b.tokens = Math.min(this.o.burst, b.tokens + elapsed / this.o.intervalMs);
    b.at = now;
    if (b.tokens < 1) {
      b.suppressed++;
      this.suppressedTotal++;
      return undefined;
    }
    b.tokens -= 1;
    const suppressed = b.suppressed;
    b.suppressed = 0;
    return suppressed;
  }

  /** Refused and not yet reported by a passing event, by kind (only kinds with some). */
  pending(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, b] of this.buckets) if (b.suppressed > 0) out[k] = b.suppressed;
    return out;
  }
}
