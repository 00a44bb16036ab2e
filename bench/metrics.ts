// Bench suite 7: the cost of one Prometheus scrape of tapmanager's metrics at 50/200/1000
// live sandboxes (every sandbox's DHCP and fence drop counters read), against the same
// counters read as one status request per sandbox (what a scrape cost before the
// counters-only read: a status() per sandbox, with its link dump and nft call).
// The pods are cheap: a few node namespaces with one bridge each (250 pods per bridge).
import { randomBytes } from 'node:crypto';
import { makePod, type Pod } from '../test/helpers/pod';
import type { TestNetns } from '../test/helpers/netns';
import { benchNetns, breathe, dropNetns } from './resources';
import { startDaemon, stopDaemon } from './setup';
import { atLeast, fmt, ratio, summarize, type SuiteResult } from './table';

const PODS_PER_NODE = 250;

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

export async function runMetricsSuite(
  opts: { scale?: number[]; rounds?: number; nodeFlags?: string[] } = {},
): Promise<SuiteResult> {
  const scale = opts.scale ?? [50, 200, 1000];
  const rounds = opts.rounds ?? 7;
  const d = await startDaemon(opts.nodeFlags ?? [], ['--metrics-address', '127.0.0.1:0']);
  const nodes: TestNetns[] = [];
  const pods: Pod[] = [];
  const ids: string[] = [];
  const rows: (string | number)[][] = [];
  const data: Record<string, unknown>[] = [];
  let topRatio = NaN;
  try {
    for (const n of scale) {
      while (pods.length < n) {
        const i = pods.length;
        if (i % PODS_PER_NODE === 0) {
          const node = benchNetns('node');
          const net = 1 + nodes.length;
          node.ip('link', 'add', 'cni0', 'mtu', '1450', 'type', 'bridge');
          node.ip('addr', 'add', `10.${net}.0.1/24`, 'dev', 'cni0');
          node.ip('link', 'set', 'cni0', 'up');
          nodes.push(node);
        }
        const host = 2 + (i % PODS_PER_NODE);
        const p = makePod({ net: nodes.length, node: nodes[nodes.length - 1]!, pod: benchNetns('pod'), host });
        const id = `m-${randomBytes(6).toString('hex')}`;
        await d.client.setup({ sandboxId: id, netnsPath: p.pod.path, cniResult: p.cniResult });
        pods.push(p);
        ids.push(id);
        if (i % 20 === 0) await breathe();
      }
      const scrape = async (): Promise<void> => {
        const r = await fetch(`http://${d.metrics}/metrics`);
        if (!r.ok) throw new Error(`scrape: HTTP ${r.status}`);
        await r.text();
      };
      await scrape(); // the first read of new sandboxes makes their series
      const scrapes: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const t0 = process.hrtime.bigint();
        await scrape();
        scrapes.push(ms(t0));
      }
      const statuses: number[] = [];
      for (let r = 0; r < Math.min(rounds, 3); r++) {
        const t0 = process.hrtime.bigint();
        for (const id of ids) await d.client.status(id);
        statuses.push(ms(t0));
      }
      const s = summarize(scrapes);
      const st = summarize(statuses).p50;
      topRatio = st / s.p50;
      data.push({ sandboxes: n, scrapeMs: scrapes, statusMs: statuses });
      rows.push([n, fmt(s.p50), fmt(s.max), fmt((s.p50 * 1000) / n, 1), fmt(st), ratio(st, s.p50)]);
    }
  } finally {
    for (const id of ids) await d.client.teardown(id).catch(() => undefined);
    await stopDaemon(d);
    dropNetns(...pods.map((p) => p.pod), ...nodes);
  }
  const top = scale[scale.length - 1]!;
  return {
    tables: [
      {
        title: 'Metrics: one Prometheus scrape at N live sandboxes',
        columns: ['sandboxes', 'scrape ms p50', 'scrape ms max', 'us per sandbox', 'N status ms', 'N status/scrape'],
        rows,
        notes: [
          `scrape: one GET /metrics (${rounds} rounds after a first one), which reads every sandbox's DHCP and fence drop counters. ` +
            'N status: the same counters read as one status request per sandbox over the control socket, one after another ' +
            '(each with its link dump and nft call: what a scrape cost before the counters-only read).',
        ],
      },
    ],
    targets: top >= 1000 ? [atLeast('metrics', `N status / one scrape at ${top} sandboxes`, topRatio, 5)] : [],
    data: { rows: data },
  };
}
