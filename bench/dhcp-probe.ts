// The DHCP bench's client for its latency rows (issue 21), a process of its own, like perfdhcp:
// one socket on port 68 bound to the client end of the probe's sandbox, in a netns where no
// other socket listens on port 68 (a broadcast reply is matched against every port-68 socket
// of its netns, and the bench's 1000 made the kernel walk them all for each reply); the
// addon's receive into one reused buffer and its synchronous send (no dgram Buffer, rinfo or
// send callback per datagram); requests encoded once with only their xid patched; times in
// preallocated arrays. The bench process (1000 client sockets, every sample) no longer sits
// in the measured path: its mark-compacts reached 104-126 ms on the CPU the servers share.
// argv[2]: JSON { netns, ifname, mac, ip, serverId }. Commands on stdin, one JSON line each,
// answered in order by one JSON line on stdout:
//   {"op":"inform"}                    -> {"ok":true} once the server answers an INFORM
//   {"op":"collect"}                   -> {"ok":true} after a full GC of the probe's heap
//   {"op":"rounds","n":N}              -> N rounds of DISCOVER->OFFER, REQUEST->ACK, renewal->ACK
//   {"op":"burst","rate":R,"count":C}  -> the paced burst (dhcp-burst.ts)
import * as readline from 'node:readline';
import { performance } from 'node:perf_hooks';
import { FLAG_BROADCAST, MessageType, Opt } from '../src/dhcp/constants';
import { IpOption, MessageTypeOption, ParameterListOption } from '../src/dhcp/options';
import { DhcpPacket } from '../src/dhcp/packet';
import { sock4Send, sock4Watch, udpSocketBoundToDevice, withNetns } from '../src/native';
import { DEFAULT_PRL } from '../test/fixtures/dhcp-client';
import { messageType, pacedBurst, type BurstIo } from './dhcp-burst';
import { MONO_OFFSET as MONO, observeGc } from './gc-pauses';

export interface ProbeConfig {
  netns: string;
  ifname: string;
  mac: string;
  ip: string;
  serverId: string;
}

/** One kind of exchange over a command: send and reply times (CLOCK_MONOTONIC ms) of those answered. */
export interface ProbeExchanges {
  sent: number[];
  at: number[];
}

export interface ProbeRounds {
  offer: ProbeExchanges;
  ack: ProbeExchanges;
  renew: ProbeExchanges;
  lost: number;
}

const BROADCAST = '255.255.255.255';
const TIMEOUT_MS = 2000;
const cfg = JSON.parse(process.argv[2]!) as ProbeConfig;
/** TWB_DHCP_PROBE_GC=1: each of the probe's GCs on stderr (flags 4 = forced, between commands) */
if (process.env.TWB_DHCP_PROBE_GC)
  observeGc((p) =>
    process.stderr.write(
      `probe ${process.pid} gc ${p.kind} flags ${p.flags} at ${p.start.toFixed(3)} ${p.ms.toFixed(3)} ms\n`,
    ),
  );
const fd = withNetns(cfg.netns, () => udpSocketBoundToDevice(cfg.ifname, 68));
const RECEIVE = Buffer.alloc(2048);
let onReply: (length: number) => void = () => undefined;
sock4Watch(fd, RECEIVE, (length) => {
  if (length > 0) onReply(Math.min(length, RECEIVE.length));
});
const io: BurstIo = {
  send: (b, to) => sock4Send(fd, to ?? BROADCAST, 67, b),
  listen: (fn) => {
    onReply = (length) => fn(RECEIVE, length);
    return () => (onReply = () => undefined);
  },
};

function template(type: number, o: { broadcast?: boolean; ciaddr?: string; requested?: boolean } = {}): Buffer {
  const p = new DhcpPacket().setMac(cfg.mac);
  if (o.broadcast ?? true) p.flags = FLAG_BROADCAST;
  if (o.ciaddr) p.ciaddr = o.ciaddr;
  p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(type));
  p.set(Opt.PARAMETER_REQUEST_LIST, new ParameterListOption(DEFAULT_PRL));
  if (o.requested) {
    p.set(Opt.REQUESTED_IP, new IpOption(cfg.ip));
    p.set(Opt.SERVER_ID, new IpOption(cfg.serverId));
  }
  return p.encode();
}

const DISCOVER = template(MessageType.DISCOVER);
const REQUEST = template(MessageType.REQUEST, { requested: true });
const RENEW = template(MessageType.REQUEST, { broadcast: false, ciaddr: cfg.ip });
const INFORM = template(MessageType.INFORM, { ciaddr: cfg.ip });
let xid = (Math.random() * 0x7fffffff) >>> 0;

/** The steps of a round: what is sent, where, and the reply that answers it. */
const STEPS = [
  { buf: DISCOVER, to: BROADCAST, answer: MessageType.OFFER },
  { buf: REQUEST, to: BROADCAST, answer: MessageType.ACK },
  { buf: RENEW, to: cfg.serverId, answer: MessageType.ACK },
] as const;

/**
 * n rounds, one exchange in flight: a lost OFFER ends its round (as a client would start
 * over), a lost ACK does not. Callbacks and one timer re-armed per exchange: no promise or
 * closure per exchange.
 */
function rounds(n: number): Promise<ProbeRounds> {
  const sent = STEPS.map(() => new Float64Array(n));
  const at = STEPS.map(() => new Float64Array(n).fill(NaN));
  let k = 0;
  let step = 0;
  let lost = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  const timer = setTimeout(() => {
    lost++;
    advance(step === 0 ? 3 : step + 1);
  }, TIMEOUT_MS);
  const send = (): void => {
    const s = STEPS[step]!;
    xid = (xid + 1) >>> 0;
    s.buf.writeUInt32BE(xid, 4);
    sent[step]![k] = performance.now();
    if (sock4Send(fd, s.to, 67, s.buf) !== 0) {
      lost++;
      advance(step === 0 ? 3 : step + 1);
      return;
    }
    timer.refresh();
  };
  const advance = (next: number): void => {
    step = next;
    if (step === 3) {
      step = 0;
      k++;
    }
    if (k === n) {
      clearTimeout(timer);
      done();
    } else send();
  };
  const stop = io.listen((b, length) => {
    const t = performance.now();
    if (length < 240 || b.readUInt32BE(4) !== xid || messageType(b, length) !== STEPS[step]!.answer) return;
    at[step]![k] = t;
    advance(step + 1);
  });
  send();
  return finished.then(() => {
    stop();
    const pick = (i: number): ProbeExchanges => {
      const e: ProbeExchanges = { sent: [], at: [] };
      for (let j = 0; j < n; j++) {
        if (Number.isNaN(at[i]![j]!)) continue;
        e.sent.push(sent[i]![j]! + MONO);
        e.at.push(at[i]![j]! + MONO);
      }
      return e;
    };
    return { offer: pick(0), ack: pick(1), renew: pick(2), lost };
  });
}

/** INFORMs every 100 ms until one is answered (at most 100). */
async function inform(): Promise<boolean> {
  let answered = false;
  const stop = io.listen((b, length) => {
    if (length >= 240 && b.readUInt32BE(4) === xid && messageType(b, length) === MessageType.ACK) answered = true;
  });
  try {
    for (let t = 0; t < 100 && !answered; t++) {
      xid = (xid + 1) >>> 0;
      INFORM.writeUInt32BE(xid, 4);
      sock4Send(fd, cfg.serverId, 67, INFORM);
      for (let w = 0; w < 10 && !answered; w++) await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    stop();
  }
  return answered;
}

/** the probe's own garbage, collected between turns, not during one (dhcp-probe-driver.ts) */
const collect = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

async function serve(cmd: { op: string; n?: number; rate?: number; count?: number }): Promise<unknown> {
  switch (cmd.op) {
    case 'collect':
      collect();
      return { ok: true };
    case 'inform':
      return { ok: await inform() };
    case 'rounds':
      return rounds(cmd.n!);
    case 'burst': {
      const b = await pacedBurst(io, DISCOVER, REQUEST, { rate: cmd.rate!, count: cmd.count! });
      const mono = (a: Float64Array): number[] => Array.from(a, (x) => x + MONO);
      const t = b.times;
      return {
        offer: b.offer,
        ack: b.ack,
        lost: b.lost,
        times: { discover: mono(t.discover), offer: mono(t.offer), request: mono(t.request), ack: mono(t.ack) },
      };
    }
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

// one command at a time, in order
let queue = Promise.resolve();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  queue = queue.then(async () => {
    const r = await serve(JSON.parse(line) as { op: string });
    process.stdout.write(`${JSON.stringify(r)}\n`);
  });
});
process.stdin.on('end', () => process.exit(0));
