// Fuzz of the DHCPv6 decoder and state machine: thousands of seeded cases per run (random,
// and mutated client messages of every type). scripts/fuzz-dhcp6.ts runs millions.
import { expect, it } from 'vitest';
import { checkCase6, fuzzContext6, makeCase6, prng } from '../fixtures/dhcp6-fuzz';

it('decode never throws anything but Dhcp6DecodeError, and what decodes never breaks the server', () => {
  const seed = Number(process.env.DHCP6_FUZZ_SEED ?? 20261202);
  const rand = prng(seed);
  let ctx = fuzzContext6();
  const tally = { decoded: 0, rejected: 0 };
  for (let i = 0; i < 8000; i++) {
    if (i % 1000 === 0) ctx = fuzzContext6();
    tally[checkCase6(makeCase6(rand), ctx)]++;
  }
  expect(tally.decoded).toBeGreaterThan(800);
  expect(tally.rejected).toBeGreaterThan(800);
});
