// Long fuzz run of the DHCPv6 decoder and state machine (the vitest run does a few
// thousand cases). Usage, after `npx tsc -p tsconfig.json`:
//   node dist/scripts/fuzz-dhcp6.js [cases=1000000] [seed=random]
// Prints progress and the seed; on a failure prints the case (hex) and exits 1.
import { checkCase6, fuzzContext6, makeCase6, prng } from '../test/fixtures/dhcp6-fuzz';

function main(): void {
  const cases = Number(process.argv[2] ?? 1_000_000);
  const seed = Number(process.argv[3] ?? Math.floor(Math.random() * 2 ** 31));
  const rand = prng(seed);
  let ctx = fuzzContext6();
  const tally = { decoded: 0, rejected: 0 };
  const t0 = Date.now();
  console.log(`fuzz-dhcp6: ${cases} cases, seed ${seed}`);
  for (let i = 1; i <= cases; i++) {
    try {
      tally[checkCase6(makeCase6(rand), ctx)]++;
    } catch (e) {
      console.error(`FAILED at case ${i} (seed ${seed}):\n${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    }
    if (i % 100_000 === 0) {
      ctx = fuzzContext6();
      const s = (Date.now() - t0) / 1000;
      console.log(`${i} cases, ${tally.decoded} decoded, ${tally.rejected} rejected, ${Math.round(i / s)}/s`);
    }
  }
  console.log(`ok: ${cases} cases in ${((Date.now() - t0) / 1000).toFixed(1)}s (${tally.decoded} decoded)`);
}

main();
