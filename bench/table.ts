// Bench tables: a title, columns, rows; printed aligned, and stats helpers.
export interface Table {
  title: string;
  columns: string[];
  rows: (string | number)[][];
  notes?: string[];
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(samples: number[]): { p50: number; p99: number; min: number; max: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, n: s.length };
}

export function fmt(v: number, digits = 2): string {
  if (!Number.isFinite(v)) return '-';
  return v >= 100 ? v.toFixed(0) : v.toFixed(digits);
}

export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '-';
}

export function renderTable(t: Table): string {
  const cells = [t.columns, ...t.rows.map((r) => r.map(String))];
  const widths = t.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const out = [`### ${t.title}`, '', line(t.columns), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`];
  for (const r of cells.slice(1)) out.push(line(r));
  for (const n of t.notes ?? []) out.push('', n);
  return out.join('\n');
}

/** One target from the issue, judged on this run's numbers. */
export interface Target {
  suite: string;
  what: string;
  goal: string;
  measured: string;
  met: boolean;
  /** how far past (met) or short of (missed) the goal, e.g. "3.1x short" */
  by: string;
}

export interface SuiteResult {
  tables: Table[];
  targets: Target[];
  /** raw figures for --json */
  data?: Record<string, unknown>;
  /** why the suite did not run here (e.g. a tool it needs is not installed) */
  skipped?: string;
}

/** "at least `goal`x" targets (bigger is better): met when value >= goal. */
export function atLeast(suite: string, what: string, value: number, goal: number, unit = 'x'): Target {
  const met = value >= goal;
  return {
    suite,
    what,
    goal: `>= ${goal}${unit}`,
    measured: `${Number.isFinite(value) ? value.toFixed(2) : '-'}${unit}`,
    met,
    by:
      Number.isFinite(value) && value > 0
        ? `${(met ? value / goal : goal / value).toFixed(3)}x ${met ? 'past' : 'short'}`
        : '-',
  };
}

/** "at most `goal`" targets (smaller is better): met when value <= goal. */
export function atMost(suite: string, what: string, value: number, goal: number, unit = 'x'): Target {
  const met = value <= goal;
  return {
    suite,
    what,
    goal: `<= ${goal}${unit}`,
    measured: `${Number.isFinite(value) ? value.toFixed(2) : '-'}${unit}`,
    met,
    by:
      Number.isFinite(value) && value > 0
        ? `${(met ? goal / value : value / goal).toFixed(3)}x ${met ? 'past' : 'short'}`
        : '-',
  };
}
