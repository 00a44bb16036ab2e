// Fuzz of the DHCP decoder and state machine: a few thousand seeded cases per run
// (random, and mutated real client packets). scripts/fuzz-dhcp.ts runs millions.
import { expect, it } from 'vitest';
import { checkCase, fuzzContext, makeCase, prng } from '../fixtures/dhcp-fuzz';

it('decode never throws anything but DecodeError, and what decodes never breaks the server', () => {
  const seed = Number(process.env.DHCP_FUZZ_SEED ?? 20240601);
  const rand = prng(seed);
  const ctx = fuzzContext();
  const tally = { decoded: 0, rejected: 0 };
  for (let i = 0; i < 5000; i++) tally[checkCase(makeCase(rand), ctx)]++;
  // both paths are exercised, not just the error one
  expect(tally.decoded).toBeGreaterThan(500);
  expect(tally.rejected).toBeGreaterThan(500);
});
