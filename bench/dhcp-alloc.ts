// What one DHCP exchange allocates on tapwire's message path (decode -> respond: handle,
// reply bytes from the server's reply cache, destination; no socket), and how often the
// young generation is scavenged for it: the figures behind docs/dhcp-latency.md.
// Deterministic, unlike latency, so it can be measured on a busy machine. Bytes: `node
// --expose-gc --min-semi-space-size=64 dist/bench/dhcp-alloc.js`; scavenges as the daemon
// has them: `node --max-semi-space-size=1 ...`. TWB_DHCP_ALLOC_PATH=build measures the
// path without the cache (handleRequest -> replyDestination -> encode, every reply built).
import * as fs from 'node:fs';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import { MessageType, Opt } from '../src/dhcp/constants';
import { newCounters } from '../src/dhcp/counters';
import { replyDestination } from '../src/dhcp/destination';
import { handleRequest, type HandlerContext } from '../src/dhcp/handler';
import { ReplyCache } from '../src/dhcp/reply-cache';
import { respond } from '../src/dhcp/respond';
import { writeIpv4 } from '../src/dhcp/ipv4';
import { resolveLeases } from '../src/dhcp/lease';
import { IpOption, MessageTypeOption, ParameterListOption } from '../src/dhcp/options';
import { DhcpPacket } from '../src/dhcp/packet';
import { makeLease } from '../test/fixtures/dhcp-net';
import { DEFAULT_PRL } from '../test/fixtures/dhcp-client';
import { silentLogger } from '../src/util/log';

const SERVER_ID = '169.254.254.2';
const MAC = '02:42:0a:00:00:05';

function message(type: number, selecting: boolean): Buffer {
  const p = new DhcpPacket().setMac(MAC);
  p.xid = 0x9e3779b9;
  p.flags = 0x8000;
  p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(type));
  p.set(Opt.PARAMETER_REQUEST_LIST, new ParameterListOption(DEFAULT_PRL));
  if (selecting) p.set(Opt.REQUESTED_IP, new IpOption('10.100.0.5')).set(Opt.SERVER_ID, new IpOption(SERVER_ID));
  // as dgram hands it over: a Buffer of its own (not a slice of the pool)
  const b = p.encode();
  const own = Buffer.alloc(b.length);
  b.copy(own);
  return own;
}

const ctx: HandlerContext = {
  serverId: SERVER_ID,
  serverIdBytes: writeIpv4(Buffer.alloc(4), 0, SERVER_ID),
  leases: resolveLeases([
    makeLease({
      mac: MAC,
      ip: '10.100.0.5',
      routers: ['10.100.0.1'],
      classlessRoutes: [
        { dst: `${SERVER_ID}/32`, gw: '0.0.0.0' },
        { dst: '10.100.0.1/32', gw: '0.0.0.0' },
        { dst: '10.96.0.0/12', gw: '10.100.0.1' },
        { dst: '0.0.0.0/0', gw: '10.100.0.1' },
      ],
      hostname: 'pod-0',
    }),
  ]),
  bindings: new Map(),
  counters: newCounters(),
  log: silentLogger,
  now: Date.now,
};

const msgs = [message(MessageType.DISCOVER, false), message(MessageType.REQUEST, true)];
let sink = 0;

const cache = new ReplyCache();
const built = process.env.TWB_DHCP_ALLOC_PATH === 'build';

function exchange(i: number): void {
  const wire = msgs[i & 1]!;
  const req = DhcpPacket.decode(wire);
  if (built) {
    const reply = handleRequest(ctx, req);
    if (!reply) throw new Error('no reply');
    sink += replyDestination(req, reply, 67, 68).port;
    sink += reply.encode().length;
    return;
  }
  const r = respond(ctx, cache, req, wire, 67, 68);
  if (!r) throw new Error('no reply');
  sink += r.to.port + r.bytes.length;
}

/** This thread's CPU time (ns, /proc schedstat): unlike the wall clock, it does not count waiting for a CPU on a busy machine. */
function threadCpuNs(): number {
  return Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
}

const newSpace = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;

function main(): void {
  for (let i = 0; i < 20000; i++) exchange(i); // optimised
  const gc = (globalThis as { gc?: () => void }).gc;
  // bytes on the JS heap per message (a DISCOVER or a REQUEST), read from the young
  // generation around 1000 messages: run with a young generation that holds them all
  // (--min-semi-space-size=64) or a scavenge in between spoils the reading (then: NaN)
  gc?.();
  const a = newSpace();
  for (let i = 0; i < 1000; i++) exchange(i);
  const b = newSpace();
  const perMessage = b > a ? (b - a) / 1000 : NaN;
  let scavenges = 0;
  let gcMs = 0;
  const obs = new PerformanceObserver((l) => {
    for (const e of l.getEntries()) {
      scavenges++;
      gcMs += e.duration;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const n = 200000;
  const t0 = performance.now();
  const c0 = threadCpuNs();
  for (let i = 0; i < n; i++) exchange(i);
  const us = ((performance.now() - t0) * 1000) / n;
  const cpuUs = (threadCpuNs() - c0) / 1000 / n;
  setTimeout(() => {
    obs.disconnect();
    console.log(
      JSON.stringify({
        bytesPerMessage: Math.round(perMessage),
        usPerMessage: Number(us.toFixed(2)),
        cpuUsPerMessage: Number(cpuUs.toFixed(2)),
        gcPer10kMessages: Number(((scavenges * 10000) / n).toFixed(1)),
        gcMsPer10kMessages: Number(((gcMs * 10000) / n).toFixed(2)),
        path: built ? 'build' : 'cache',
        sink: sink > 0,
      }),
    );
  }, 100);
}

main();
