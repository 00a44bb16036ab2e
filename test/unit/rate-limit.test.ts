// The token buckets behind the log rate limit: a burst, then one per interval, per kind;
// what is refused is counted and handed to the next event of its kind that passes.
import { expect, it } from 'vitest';
import { RateLimiter } from '../../src/util/rate-limit';

it('passes a burst, then one per interval, per kind, and reports what it left out', () => {
  const clock = { now: 1000 };
  const l = new RateLimiter({ burst: 3, intervalMs: 100 }, () => clock.now);
  expect([l.take('a'), l.take('a'), l.take('a'), l.take('a'), l.take('a')]).toEqual([0, 0, 0, undefined, undefined]);
  expect(l.take('b')).toBe(0); // a kind of its own
  expect(l.pending()).toEqual({ a: 2 });
  clock.now += 99;
  expect(l.take('a')).toBeUndefined();
  clock.now += 1;
  expect(l.take('a')).toBe(3); // one token back: passes, and says 3 were left out before it
  expect(l.take('a')).toBeUndefined();
  expect(l.suppressedTotal).toBe(4);
  clock.now += 10_000; // refills to the burst, no further
  expect([l.take('a'), l.take('a'), l.take('a'), l.take('a')]).toEqual([1, 0, 0, undefined]);
});

it('a clock that goes back refills nothing and breaks nothing', () => {
  const clock = { now: 1_000_000 };
  const l = new RateLimiter({ burst: 1, intervalMs: 100 }, () => clock.now);
  expect(l.take('a')).toBe(0);
  clock.now -= 500_000;
  expect(l.take('a')).toBeUndefined();
  clock.now += 100;
  expect(l.take('a')).toBe(1);
});

it('takes an explicit time, and refuses nonsense options', () => {
  const l = new RateLimiter({ burst: 1, intervalMs: 1000 });
  expect(l.take('x', 0)).toBe(0);
  expect(l.take('x', 999)).toBeUndefined();
  expect(l.take('x', 1999)).toBe(1);
  expect(() => new RateLimiter({ burst: 0, intervalMs: 1 })).toThrow(RangeError);
  expect(() => new RateLimiter({ burst: 1, intervalMs: 0 })).toThrow(RangeError);
});
