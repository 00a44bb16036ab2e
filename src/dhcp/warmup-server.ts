// The last step of the DHCP warm-up at start: exchanges through a whole DhcpServer on
// loopback (its socket bound to lo on a port the kernel picks, the client a dgram socket
// on 127.0.0.1), a few requests in flight, each answer sending the next. warmup.ts
// leaves decode/handle/encode optimised; what it does not reach is the rest of the way a
// request takes: the addon's receive callback, DhcpServer.onDatagram, the reply destination
// and the send (until session 9 the server's socket was dgram's, and its receive callback,
// send, lookup and nextTick were what --trace-opt showed compiled
// during the first real exchanges after a start, on the thread that answers them, and on
// a 1-CPU share the compiler's thread competes with it). Nothing leaves the host: every
// reply goes to 127.0.0.1. 3000 rounds, 4 requests in flight, ~60 ms, at the start of a
// process; finishDhcpWarmUp runs 3000 more once the start's servers are built.
import * as dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { SOCK4_ANSWER_SLOTS } from '../native';
import { collectGarbageAndSettle, collectGarbageNow } from '../util/collect-garbage';
import { MessageType, Opt, OP_BOOTREQUEST } from './constants';
import { IpOption, MessageTypeOption, ParameterListOption, TextOption, Uint16Option } from './options';
import { DhcpPacket } from './packet';
import { DhcpServer, type StaticLease } from './server';
import { WARM_UP_LOGGER, warmUpObjects } from './warmup';

const MAC = '02:00:5e:00:53:02';
const LOOPBACK = '127.0.0.1';

const LEASE: StaticLease = {
  mac: MAC,
  ip: LOOPBACK, // every reply (unicast to yiaddr or ciaddr) comes back to the client here
  prefixLen: 8,
  routers: ['127.0.0.254'],
  classlessRoutes: [{ dst: '127.0.0.254/32', gw: '0.0.0.0' }],
  dns: ['127.0.0.53'],
  search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
  domain: 'cluster.local',
  hostname: 'warmup',
  mtu: 1450,
};

function request(
  type: number,
  prl: number[],
  xid: number,
  o: { renewing?: boolean; maxSize?: number; host: string },
): Buffer {
  const p = new DhcpPacket();
  p.op = OP_BOOTREQUEST;
  p.xid = xid;
  p.setMac(MAC);
  p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(type));
  p.set(Opt.HOSTNAME, new TextOption(o.host));
  p.set(Opt.PARAMETER_REQUEST_LIST, new ParameterListOption(prl));
  if (o.maxSize !== undefined) p.set(Opt.MAX_MESSAGE_SIZE, new Uint16Option(o.maxSize));
  if (o.renewing) p.ciaddr = LOOPBACK;
  else if (type === MessageType.REQUEST) {
    p.set(Opt.REQUESTED_IP, new IpOption(LOOPBACK));
    p.set(Opt.SERVER_ID, new IpOption(LOOPBACK));
  }
  return p.encode();
}

/**
 * Two client shapes, each sent under two host names (option 12, which the server does not
 * read): 12 requests that differ beyond xid and secs, more than the addon learns
 * (SOCK4_ANSWER_SLOTS, replaced oldest first), so that, sent in turn, every one misses
 * and takes the JS path that is warmed here; the reply cache's keys stay 4.
 */
function requests(): Buffer[] {
  const xid = (i: number): number => (0x7f4a7c15 * (i + 1)) >>> 0;
  const shapes = ['warm-a', 'warm-b'].flatMap((host) => [
    { prl: [1, 3, 6, 12, 15, 28, 42, 121, 119, 26], maxSize: 576, host },
    { prl: [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42], host },
  ]);
  const msgs = shapes.flatMap((s, i) => [
    request(MessageType.DISCOVER, s.prl, xid(3 * i), s),
    request(MessageType.REQUEST, s.prl, xid(3 * i + 1), s),
    request(MessageType.REQUEST, s.prl, xid(3 * i + 2), { ...s, renewing: true }),
  ]);
  if (msgs.length <= SOCK4_ANSWER_SLOTS) throw new Error(`the warm-up needs more than ${SOCK4_ANSWER_SLOTS} requests`);
  return msgs;
}

/**
 * Requests on their way at once: the server's onMessage and handleRequest needed ~3000
 * calls before V8 compiled them (with 1000 they were compiled during the first real
 * exchanges, --trace-opt); one at a time that took ~0.3 s, most of it waiting on the
 * round trip.
 */
const IN_FLIGHT = 4;

/**
 * Callbacks of other kinds on the tick queue beside dgram's sends, as a daemon has (its log
 * writes, its control sockets): with only dgram's, Node's processTicksAndRejections was
 * compiled for that one callback and deoptimised by the first other one ("wrong feedback
 * cell": the bench server's "ready" line), then compiled again during the first real
 * exchanges (3 ms of a compiler thread). Distinct functions, with 0 to 3 arguments (a call
 * site each in processTicksAndRejections), make its calls generic.
 */
const OTHER_TICKS: ((...a: unknown[]) => void)[] = [() => undefined, () => null, () => 0, () => 1, () => ''];

function otherTick(i: number): void {
  const f = OTHER_TICKS[i % OTHER_TICKS.length]!;
  switch ((i >> 3) & 3) {
    case 0:
      process.nextTick(f);
      break;
    case 1:
      process.nextTick(f, i);
      break;
    case 2:
      process.nextTick(f, i, null);
      break;
    default:
      process.nextTick(f, i, null, 4);
  }
}

/**
 * `rounds` exchanges through a DhcpServer on lo. Resolves with the replies received, or 0
 * when loopback cannot carry them (then onSkip says why), never later than deadlineMs; the
 * server and the client socket are closed either way.
 */
export async function warmUpDhcpServer(
  rounds = 3000,
  o: { deadlineMs?: number; onSkip?: (why: string) => void } = {},
): Promise<number> {
  const deadlineMs = o.deadlineMs ?? 2000;
  const client = dgram.createSocket('udp4');
  let server: DhcpServer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let answered = 0;
  let sent = 0;
  let why: string | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('error', reject);
      client.bind(0, LOOPBACK, () => {
        client.off('error', reject);
        resolve();
      });
    });
    server = await DhcpServer.start({
      ifname: 'lo',
      serverId: LOOPBACK,
      port: 0,
      clientPort: client.address().port,
      leases: [LEASE],
      logger: WARM_UP_LOGGER.child('server'),
    });
    const port = server.localPort();
    const msgs = requests();
    why = await new Promise<string | undefined>((resolve) => {
      timer = setTimeout(() => resolve(`${answered} of ${rounds} loopback exchanges in ${deadlineMs} ms`), deadlineMs);
      client.on('error', (e) => resolve(`loopback client socket: ${e.message}`));
      client.on('message', (_msg, from) => {
        // only the server's replies: any local user can send to a port on 127.0.0.1
        if (from.address !== LOOPBACK || from.port !== port) return;
        if (++answered >= rounds) resolve(undefined);
        else if (sent < rounds) client.send(msgs[sent++ % msgs.length]!, port, LOOPBACK);
        otherTick(answered);
      });
      while (sent < IN_FLIGHT) client.send(msgs[sent++ % msgs.length]!, port, LOOPBACK);
    });
  } catch (e) {
    why = `loopback DHCP server: ${(e as Error).message}`;
  } finally {
    clearTimeout(timer);
    await server?.close();
    await new Promise<void>((resolve) => {
      try {
        client.close(() => resolve());
      } catch {
        resolve(); // never bound or already closed
      }
    });
  }
  warmUpObjects.push(server, client);
  if (why !== undefined) {
    o.onSkip?.(why);
    return 0;
  }
  // V8 compiles what the rounds made hot on a thread of its own: let those jobs finish
  // now rather than beside the first real exchanges
  await new Promise((r) => setTimeout(r, 20));
  return answered;
}

/**
 * The last step of a start, once every server of the recovery is listening and before the
 * daemon says it is ready:
 * 1. a full collection of the start's garbage (~10 MB at 1000 sandboxes), which V8 would
 *    otherwise finish as an incremental mark-compact beside the first guests' exchanges;
 * 2. 3000 rounds through the loopback server again: what the warm-up compiled did not all
 *    survive the start. With 1000 servers built after it, --trace-opt/--trace-deopt showed
 *    the reply path's pieces dropped ("weak objects": dgram's doSend, three encode
 *    functions) and Node's tick queue and dgram-send internals (afterDns, nextTick,
 *    processTicksAndRejections, FixedQueue push/isEmpty, emitBeforeScript) deoptimised or
 *    never optimised, then compiled again by TurboFan during the first 100 real exchanges:
 *    1-2 ms of the compiler's threads there, on the CPU the answers wait for. After these
 *    rounds: none (bench/dhcp.ts TWB_DHCP_COLD_TRACE prints each thread's CPU time). With
 *    1000 rounds doSend was not hot again yet and was compiled (4-5 ms of a compiler
 *    thread) during the bench's next rounds. Why the collection drops it: optimised code
 *    holds the maps it saw weakly, and a map that no live object has (a SendWrap's, once
 *    every send has completed) dies in a mark-compact, taking the code with it; so any
 *    later mark-compact of the daemon costs the same recompilation once;
 * 3. a scavenge of the rounds' garbage, so the first real exchanges do not meet one, and
 *    20 ms for the compiler's last jobs.
 * About 50 + 80 + 20 ms once per start.
 */
export async function finishDhcpWarmUp(o: { onSkip?: (why: string) => void } = {}): Promise<void> {
  await collectGarbageAndSettle();
  await warmUpDhcpServer(3000, o);
  collectGarbageNow('minor');
  await sleep(20);
}
