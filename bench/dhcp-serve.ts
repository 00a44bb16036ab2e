// Child process of the DHCP bench: tapwire's DhcpServer, one per sandbox netns (as the
// daemon runs them), in a process of its own so the bench's client does not share its event
// loop. argv[2] is a JSON file: [{ netns, lease }]. Prints "base <rss KB>" before starting
// and "ready <n>" once every server is listening (after warming the message path as the
// daemon does at start); exits on SIGTERM or when stdin closes.
// With argv[3] = --echo it runs the Node floor instead: the same bound dgram socket, but each
// request is answered by a copy of itself turned into a reply (op 2, type 53 rewritten), with
// no decoding, state or options: what any DHCP server written on Node's dgram costs at least.
// With TWB_DHCP_TRACE=1 it records its GC pauses (perf_hooks 'gc' entries, in CLOCK_MONOTONIC
// ms like the bench client's hrtime) and its event-loop delay (monitorEventLoopDelay at 1 ms
// resolution, which is itself a 1 ms timer: trace runs are not the measurement); a line
// "trace" on stdin prints "trace <json>" with what was recorded since the last one.
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import * as readline from 'node:readline';
import { udpSocketBoundToDevice, withNetns } from '../src/native';
import { DhcpServer, StaticLease } from '../src/dhcp/server';
import { warmUpDhcp, warmUpDhcpFromSocket } from '../src/dhcp/warmup';
import { finishDhcpWarmUp, warmUpDhcpServer } from '../src/dhcp/warmup-server';
import { createLogger } from '../src/util/log';
import { observeGc, type GcPause } from './gc-pauses';

function rssKb(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]);
}

async function main(): Promise<void> {
  const conf = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as { netns: string; lease: StaticLease }[];
  process.stdout.write(`base ${rssKb()}\n`);
  if (process.argv[3] !== '--echo') {
    // as the tapmanager daemon does at start
    warmUpDhcp();
    await warmUpDhcpFromSocket();
    if (!process.env.TWB_DHCP_NO_SERVER_WARMUP) await warmUpDhcpServer();
    if (process.env.TWB_DHCP_TRACE) process.stdout.write('warm-up done\n'); // a mark among --trace-deopt lines
  }
  const servers: { close(): Promise<void> }[] = [];
  // a logger of the daemon's kind (createLogger's, a child per server), writing nowhere: with
  // the library's silentLogger the first real ACK's debug line called a function the warm-up
  // never saw and deoptimised the handler (--trace-deopt: "wrong call target" in ack)
  const log = createLogger('bench', () => undefined);
  for (const c of conf) {
    if (process.argv[3] === '--echo') {
      servers.push(await echo(c.netns));
      continue;
    }
    servers.push(
      await DhcpServer.start({
        ifname: 'br0',
        netns: c.netns,
        serverId: '169.254.254.2',
        leases: [c.lease],
        logger: log.child(`dhcp.${servers.length}`),
      }),
    );
  }
  // as the daemon does after its recovery: the start-up's garbage collected before the first guest
  if (process.argv[3] !== '--echo' && !process.env.TWB_DHCP_NO_COLLECT) await finishDhcpWarmUp();
  process.stdout.write(`ready ${servers.length}\n`);
  const stop = (): void => {
    void Promise.all(servers.map((s) => s.close())).then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  const trace = process.env.TWB_DHCP_TRACE ? startTrace() : undefined;
  readline
    .createInterface({ input: process.stdin })
    .on('line', (l) => {
      if (l === 'trace') process.stdout.write(`trace ${JSON.stringify(trace?.() ?? null)}\n`);
    })
    .on('close', stop);
}

function startTrace(): () => { gc: GcPause[]; loopDelay: Record<string, number>; elu: number } {
  let gc: GcPause[] = [];
  observeGc((p) => gc.push(p));
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let elu = performance.eventLoopUtilization();
  return () => {
    const out = {
      gc,
      loopDelay: {
        p50: h.percentile(50) / 1e6,
        p99: h.percentile(99) / 1e6,
        max: h.max / 1e6,
        samples: h.count,
      },
      elu: performance.eventLoopUtilization(elu).utilization,
    };
    gc = [];
    h.reset();
    elu = performance.eventLoopUtilization();
    return out;
  };
}

const REPLY_TYPE: Record<number, number> = { 1: 2, 3: 5, 8: 5 }; // DISCOVER->OFFER, REQUEST->ACK, INFORM->ACK

async function echo(netns: string): Promise<{ close(): Promise<void> }> {
  const fd = withNetns(netns, () => udpSocketBoundToDevice('br0', 67));
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind({ fd }, () => resolve()));
  sock.on('message', (msg) => {
    const out = Buffer.from(msg);
    out[0] = 2;
    // the bench client writes option 53 first: 240 = 53, 241 = 1, 242 = type
    if (out[240] === 53) out[242] = REPLY_TYPE[out[242]!] ?? 0;
    const ciaddr = out.readUInt32BE(12);
    const to = ciaddr ? [out[12], out[13], out[14], out[15]].join('.') : '255.255.255.255';
    sock.send(out, 68, to);
  });
  return { close: () => new Promise((r) => sock.close(() => r())) };
}

main().catch((e: unknown) => {
  process.stderr.write(`dhcp-serve: ${(e as Error).message}\n`);
  process.exit(1);
});
