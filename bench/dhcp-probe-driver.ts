// The bench's side of dhcp-probe.ts: starts the probe process and sends it one command at a
// time, each answered by one JSON line.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { BurstResult } from './dhcp-burst';
import type { ProbeConfig, ProbeRounds } from './dhcp-probe';
import { track } from './resources';

const PROBE = path.resolve(__dirname, 'dhcp-probe.js');
/**
 * The probe's GC runs on its own thread only, with a young generation no turn fills, and the
 * bench has it collect before each turn (collect()): session 15 found the probes' scavenges
 * (1-4 ms, one about every 250 exchanges, with helper threads on the servers' CPU) under the
 * burst's slowest exchanges of every server. TWB_DHCP_PROBE_FLAGS adds flags.
 */
const FLAGS = [
  '--single-threaded-gc',
  '--expose-gc',
  '--min-semi-space-size=16',
  '--max-semi-space-size=16',
  ...(process.env.TWB_DHCP_PROBE_FLAGS ?? '').split(' ').filter(Boolean),
];

/** JSON has no NaN: an unanswered exchange's time comes back as null. */
const times = (a: (number | null)[]): Float64Array => Float64Array.from(a, (x) => x ?? NaN);

export class DhcpProbe {
  private waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  private exited: string | undefined;

  private constructor(private readonly p: ChildProcess) {
    readline.createInterface({ input: p.stdout! }).on('line', (l) => this.waiting.shift()?.resolve(l));
    p.once('exit', (code, sig) => {
      this.exited = `the DHCP probe exited ${code ?? sig}`;
      for (const w of this.waiting.splice(0)) w.reject(new Error(this.exited));
    });
  }

  static start(cfg: ProbeConfig): DhcpProbe {
    return new DhcpProbe(
      track(spawn(process.execPath, [...FLAGS, PROBE, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'inherit'] })),
    );
  }

  get pid(): number {
    return this.p.pid!;
  }

  private ask(cmd: object): Promise<string> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.p.stdin!.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  /** Resolves once the probe's server answers an INFORM; throws after ~10 s of silence. */
  async inform(): Promise<void> {
    const r = JSON.parse(await this.ask({ op: 'inform' })) as { ok: boolean };
    if (!r.ok) throw new Error("the probe's server never answered an INFORM");
  }

  /** A full GC of the probe's heap (25-30 ms), so that none falls in the turn that follows. */
  async collect(): Promise<void> {
    await this.ask({ op: 'collect' });
  }

  async rounds(n: number): Promise<ProbeRounds> {
    return JSON.parse(await this.ask({ op: 'rounds', n })) as ProbeRounds;
  }

  /** The paced burst; its times are CLOCK_MONOTONIC ms (the server trace's clock). */
  async burst(rate: number, count: number): Promise<BurstResult> {
    const r = JSON.parse(await this.ask({ op: 'burst', rate, count })) as Omit<BurstResult, 'times'> & {
      times: Record<keyof BurstResult['times'], (number | null)[]>;
    };
    const t = r.times;
    return {
      ...r,
      times: { discover: times(t.discover), offer: times(t.offer), request: times(t.request), ack: times(t.ack) },
    };
  }

  async close(): Promise<void> {
    if (this.p.exitCode !== null || this.p.signalCode !== null) return;
    const gone = new Promise((r) => this.p.once('exit', r));
    this.p.stdin!.end();
    await gone;
  }
}
