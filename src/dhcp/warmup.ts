// Runs the message path (decode, respond: handle, reply bytes, destination) over synthetic
// DISCOVER/REQUEST/renewal exchanges, with no socket, so that V8 has optimized it before
// the first real client. Without it the first ~100 exchanges after the daemon starts were
// answered 1.2-2x slower at p50 and 6-15x at p99 than warm ones (bench/RESULTS.md, DHCP).
// warmUpDhcpFromSocket then runs them on buffers as dgram makes them.
// About 2000 rounds at ~6 us each: some 10-20 ms, once per process.
import * as dgram from 'node:dgram';
import { createLogger, type Logger } from '../util/log';
import { RateLimiter } from '../util/rate-limit';
import { FLAG_BROADCAST, MessageType, Opt, OP_BOOTREQUEST } from './constants';
import { newCounters } from './counters';
import type { HandlerContext } from './handler';
import { writeIpv4 } from './ipv4';
import { resolveLeases } from './lease';
import { IpOption, MessageTypeOption, ParameterListOption, Uint16Option } from './options';
import { DhcpPacket } from './packet';
import { ReplyCache } from './reply-cache';
import { respond } from './respond';

const MAC = '02:00:5e:00:53:01';
const SERVER_ID = '169.254.254.2';
// udhcpc's, dhclient's and dhcpcd's kinds of lists, so the handler sees the shapes it will;
// dhclient's without a maximum message size (57) as dhclient sends them: a warm-up whose
// requests all had one left the first real request without it to deoptimise the reply
// path (--trace-deopt: "not a Smi" in maxReplySize, inlined into addLeaseOptions)
// udhcpc's with the broadcast flag, so that the reply destination has seen that branch too
const PRLS: { prl: number[]; maxSize?: number; broadcast?: boolean }[] = [
  { prl: [1, 3, 6, 12, 15, 28, 42, 121, 119, 26], maxSize: 576, broadcast: true },
  { prl: [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42] },
  { prl: [1, 121, 33, 3, 6, 15, 26, 28, 51, 54, 58, 59, 119], maxSize: 1500 },
];

function request(
  type: number,
  prl: number[],
  xid: number,
  renewing: boolean,
  o: { maxSize?: number; broadcast?: boolean },
): Buffer {
  const p = new DhcpPacket();
  p.op = OP_BOOTREQUEST;
  if (o.broadcast) p.flags = FLAG_BROADCAST;
  p.htype = 1;
  p.hlen = 6;
  p.xid = xid;
  p.setMac(MAC);
  p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(type));
  p.set(Opt.PARAMETER_REQUEST_LIST, new ParameterListOption(prl));
  if (o.maxSize !== undefined) p.set(Opt.MAX_MESSAGE_SIZE, new Uint16Option(o.maxSize));
  if (type === MessageType.REQUEST && renewing) p.ciaddr = '10.200.0.2';
  else if (type === MessageType.REQUEST) {
    p.set(Opt.REQUESTED_IP, new IpOption('10.200.0.2'));
    p.set(Opt.SERVER_ID, new IpOption(SERVER_ID));
  }
  return p.encode();
}

/**
 * The warm-up's logger: of the kind the daemon gives its servers (createLogger's closures),
 * writing nowhere. With silentLogger's functions as the only call targets seen, the first
 * real ACK's debug line called another function and deoptimised the handler beside it.
 */
export const WARM_UP_LOGGER: Logger = createLogger('dhcp.warmup', () => undefined);

/**
 * What the warm-ups made, kept for the life of the process. Optimised code holds weak
 * references to objects it saw (call targets, contexts, sockets); when a major GC finds
 * them dead it throws that code away ("weak objects" in --trace-deopt): the full GC after
 * the recovery (or the incremental one a start leaves) deoptimised decode, handleRequest,
 * encode, onMessage, replyDestination... and the first real exchanges ran in baseline code.
 * A few KB.
 */
export const warmUpObjects: unknown[] = [];

function context(log: Logger): HandlerContext {
  return {
    serverId: SERVER_ID,
    serverIdBytes: writeIpv4(Buffer.alloc(4), 0, SERVER_ID),
    leases: resolveLeases([
      {
        mac: MAC,
        ip: '10.200.0.2',
        prefixLen: 24,
        routers: ['10.200.0.1'],
        classlessRoutes: [
          { dst: `${SERVER_ID}/32`, gw: '0.0.0.0' },
          { dst: '10.200.0.0/24', gw: '10.200.0.1' },
        ],
        dns: ['10.96.0.10'],
        search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
        domain: 'cluster.local',
        hostname: 'warmup',
        mtu: 1450,
      },
    ]),
    bindings: new Map(),
    counters: newCounters(),
    log,
    logLimit: new RateLimiter(), // as DhcpServer makes its context: the same shape
    now: Date.now,
  };
}

function synthetic(): Buffer[] {
  // xids as clients pick them: random 32-bit, mostly beyond a small integer, so the
  // packet's field keeps the representation real traffic gives it (a small xid here, then
  // a real one, deoptimized the whole path on the first real exchanges)
  const xid = (i: number): number => (0x9e3779b9 * (i + 1)) >>> 0;
  return PRLS.flatMap(({ prl, ...o }, i) => [
    request(MessageType.DISCOVER, prl, xid(3 * i), false, o),
    request(MessageType.REQUEST, prl, xid(3 * i + 1), false, o),
    request(MessageType.REQUEST, prl, xid(3 * i + 2), true, o),
  ]);
}

/**
 * The server's path (respond, as DhcpServer.onMessage takes it) over msgs. Its reply cache
 * holds fewer shapes than the messages have (SLOTS, against 3 lists x OFFER/ACK), so that
 * misses (buildReply, encode, keeping) run as well as hits (copying): a real server's first
 * reply to each client is a miss, which a path warmed on hits only would meet cold.
 */
function run(ctx: HandlerContext, msgs: Buffer[], rounds: number): number {
  let replies = 0;
  const cache = new ReplyCache();
  warmUpObjects.push(cache);
  for (let i = 0; i < rounds; i++) {
    const wire = msgs[i % msgs.length]!;
    const req = DhcpPacket.decode(wire);
    const r = respond(ctx, cache, req, wire, 67, 68);
    const last = i >= rounds - msgs.length; // one of each shape is kept (warmUpObjects)
    if (last) warmUpObjects.push(req, req.getOr(Opt.SERVER_ID, IpOption, 0), req.getOr(Opt.REQUESTED_IP, IpOption, 0));
    if (r) {
      const back = DhcpPacket.decode(r.bytes);
      if (last) warmUpObjects.push(r, back);
      replies++;
    }
  }
  return replies;
}

let done = false;
let wireDone = false;

/** Warms the DHCP message path once per process; returns the replies made (0 on later calls). */
export function warmUpDhcp(rounds = 2000): number {
  if (done) return 0;
  done = true;
  const ctx = context(WARM_UP_LOGGER);
  const msgs = synthetic();
  warmUpObjects.push(ctx, msgs);
  return run(ctx, msgs, rounds);
}

/**
 * The same rounds over the messages as a socket delivers them: sent to a dgram socket on
 * 127.0.0.1 (ephemeral ports; nothing leaves the host) and decoded from what arrives. A
 * Buffer made by dgram has another hidden class than one made in JS, and the first real
 * messages deoptimized the decoder warmed on JS-made buffers only (V8 --trace-deopt:
 * "wrong map" in decode, readOptionArea, readUInt32BE...). Once per process; resolves
 * with the replies made, or 0 when loopback does not carry them (lo down: bind or send
 * fails, or nothing arrives by the deadline), after telling onSkip why. Never waits
 * longer than deadlineMs, on a timer that holds the event loop open until it settles.
 */
export async function warmUpDhcpFromSocket(
  rounds = 1000,
  o: { deadlineMs?: number; onSkip?: (why: string) => void } = {},
): Promise<number> {
  if (wireDone) return 0;
  wireDone = true;
  const deadlineMs = o.deadlineMs ?? 2000;
  const msgs = synthetic();
  const sock = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  const why = await new Promise<string | undefined>((resolve) => {
    timer = setTimeout(
      () => resolve(`${got.length} of ${msgs.length} datagrams came back over 127.0.0.1 in ${deadlineMs} ms`),
      deadlineMs,
    );
    sock.on('error', (e) => resolve(`loopback socket: ${e.message}`));
    sock.on('message', (msg, from) => {
      // only what this socket sent itself: any local user can send to a port on 127.0.0.1
      if (from.address !== '127.0.0.1' || from.port !== sock.address().port) return;
      got.push(msg);
      if (got.length === msgs.length) resolve(undefined);
    });
    sock.bind(0, '127.0.0.1', () => {
      const port = sock.address().port;
      for (const m of msgs) sock.send(m, port, '127.0.0.1');
    });
  });
  clearTimeout(timer);
  await new Promise<void>((resolve) => {
    try {
      sock.close(() => resolve());
    } catch {
      resolve(); // never bound or already closed
    }
  });
  if (why !== undefined) {
    o.onSkip?.(why);
    return 0;
  }
  // another logger of createLogger's (each server has its own): a log call in the handler
  // that only ever saw one closure was compiled for it and deoptimised at the first real
  // server's ("wrong call target" in ack)
  const ctx = context(WARM_UP_LOGGER.child('socket'));
  warmUpObjects.push(ctx, got, msgs, sock);
  return run(ctx, got, rounds);
}
