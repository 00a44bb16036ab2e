// The paced burst of the DHCP bench (issue 21): like perfdhcp in template mode, one
// DISCOVER every 1000/rate ms, and as each OFFER arrives the REQUEST (selecting) that
// answers it; latency = send to the reply's arrival at the client socket, per exchange.
// It runs in the bench's probe process (dhcp-probe.ts) and is lean so that its own garbage
// does not become the servers' tail: requests are encoded once and only their xid is
// patched (the send is synchronous, so one buffer each), replies are read in place (xid and
// option 53), times are doubles in preallocated arrays, and the pacing sleeps on timers
// (client and servers share one CPU: it must not spin).
import { performance } from 'node:perf_hooks';
import { MessageType, Opt, OPTIONS_OFFSET } from '../src/dhcp/constants';

export interface BurstResult {
  offer: number[];
  ack: number[];
  lost: number;
  /** performance.now() ms at each exchange's DISCOVER, OFFER, REQUEST and ACK (NaN if none) */
  times: { discover: Float64Array; offer: Float64Array; request: Float64Array; ack: Float64Array };
}

/** A client socket: send is done when it returns (0 or an errno); listen's fn gets a reused buffer. */
export interface BurstIo {
  send(b: Buffer, to?: string): number;
  listen(fn: (b: Buffer, length: number) => void): () => void;
}

/** Option 53 of a reply of `length` bytes read in place, or -1. */
export function messageType(b: Buffer, length: number): number {
  let i = OPTIONS_OFFSET;
  while (i + 2 < length) {
    const code = b[i]!;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END) return -1;
    if (code === Opt.MESSAGE_TYPE) return b[i + 2]!;
    i += 2 + b[i + 1]!;
  }
  return -1;
}

/**
 * `count` exchanges at `rate` per second through io, with the two request templates
 * (their xid is overwritten). An exchange without its reply in timeoutMs is lost.
 */
export async function pacedBurst(
  io: BurstIo,
  discover: Buffer,
  request: Buffer,
  o: { rate: number; count: number; timeoutMs?: number },
): Promise<BurstResult> {
  const { rate, count } = o;
  const timeoutMs = o.timeoutMs ?? 1000;
  const xid0 = (Math.random() * 0x7fffffff) >>> 0;
  const sentD = new Float64Array(count).fill(NaN);
  const sentR = new Float64Array(count).fill(NaN);
  const gotO = new Float64Array(count).fill(NaN);
  const gotA = new Float64Array(count).fill(NaN);
  let done = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((r) => (finish = r));
  const stop = io.listen((msg, length) => {
    const at = performance.now();
    if (length < OPTIONS_OFFSET) return;
    const k = (msg.readUInt32BE(4) - xid0) >>> 0;
    if (k >= count) return;
    const t = messageType(msg, length);
    if (t === MessageType.OFFER && Number.isNaN(gotO[k]!)) {
      gotO[k] = at;
      request.writeUInt32BE((xid0 + k) >>> 0, 4);
      sentR[k] = performance.now();
      io.send(request);
    } else if (t === MessageType.ACK && !Number.isNaN(sentR[k]!) && Number.isNaN(gotA[k]!)) {
      gotA[k] = at;
      if (++done === count) finish();
    }
  });
  try {
    const t0 = performance.now();
    const period = 1000 / rate;
    let next = 0;
    while (next < count) {
      const now = performance.now();
      let due = next;
      while (due < count && t0 + due * period <= now) due++;
      // the timer armed before the sends: after a DISCOVER the probe only yields, so the
      // server (on the same CPU) answers at once instead of after the probe's own work
      const slept = new Promise((r) => setTimeout(r, Math.max(0, t0 + due * period - now)));
      for (; next < due; next++) {
        discover.writeUInt32BE((xid0 + next) >>> 0, 4);
        sentD[next] = performance.now();
        io.send(discover);
      }
      await slept;
    }
    await Promise.race([finished, new Promise((r) => setTimeout(r, timeoutMs))]);
  } finally {
    stop();
  }
  const offer: number[] = [];
  const ack: number[] = [];
  let lost = 0;
  for (let k = 0; k < count; k++) {
    const o1 = gotO[k]! - sentD[k]!;
    const a1 = gotA[k]! - sentR[k]!;
    if (Number.isNaN(o1) || o1 > timeoutMs || Number.isNaN(a1) || a1 > timeoutMs) lost++;
    if (!Number.isNaN(o1)) offer.push(o1);
    if (!Number.isNaN(a1)) ack.push(a1);
  }
  return { offer, ack, lost, times: { discover: sentD, offer: gotO, request: sentR, ack: gotA } };
}
