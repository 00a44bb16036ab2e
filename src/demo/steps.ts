// The demo's step printer: one line per step with its wall time, and an indented block
// for whatever the step wants to show. Plain text on stdout; errors go to the caller.
export interface StepTiming {
  name: string;
  ms: number;
}

export class Steps {
  readonly timings: StepTiming[] = [];
  private readonly t0 = performance.now();

  async run<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const t = performance.now();
    process.stdout.write(`-> ${name} ...\n`);
    const out = await fn();
    const ms = performance.now() - t;
    this.timings.push({ name, ms });
    process.stdout.write(`   done in ${fmt(ms)}\n`);
    return out;
  }

  show(text: string): void {
    for (const line of text.replace(/\n+$/, '').split('\n')) process.stdout.write(`   | ${line}\n`);
  }

  summary(): void {
    process.stdout.write('\n== step timings ==\n');
    const w = Math.max(...this.timings.map((s) => s.name.length));
    for (const s of this.timings) process.stdout.write(`   ${s.name.padEnd(w)}  ${fmt(s.ms).padStart(9)}\n`);
    process.stdout.write(`   ${'total'.padEnd(w)}  ${fmt(performance.now() - this.t0).padStart(9)}\n`);
  }
}

export function fmt(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}
