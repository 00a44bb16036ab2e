// The paced burst of the DHCP bench (issue 21): like perfdhcp in template mode, one
// DISCOVER every 1000/rate ms, and as each OFFER arrives the REQUEST (selecting) that
// answers it; latency = send to the reply's arrival at the client socket, per exchange.
// The client is lean so that its own garbage does not become the servers' tail: requests
// are encoded once and only their xid is patched (a ring of buffers, since dgram sends a
// tick later), replies are read in place (xid and option 53), times are doubles, and the
// pacing sleeps on timers (client and servers share one CPU: it must not spin).
import type * as dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { MessageType, Opt, OPTIONS_OFFSET } from '../src/dhcp/constants';

export interface BurstResult {
  offer: number[];
  ack: number[];
  lost: number;
  /** CLOCK_MONOTONIC ms (hrtime) at each exchange's DISCOVER, OFFER, REQUEST and ACK (NaN if none) */
  times: { discover: Float64Array; offer: Float64Array; request: Float64Array; ack: Float64Array };
}

const RING = 64;

/** Option 53 of a reply read in place, or -1. */
function messageType(b: Buffer): number {
  let i = OPTIONS_OFFSET;
  while (i + 1 < b.length) {
    const code = b[i]!;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END) return -1;
    if (code === Opt.MESSAGE_TYPE) return b[i + 2] ?? -1;
    i += 2 + b[i + 1]!;
  }
  return -1;
}

/** hrtime in ms as a double: one clock with the server process (CLOCK_MONOTONIC) */
const mono = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * `count` exchanges at `rate` per second through sock (a client socket on port 68 whose
 * other 'message' listeners the caller has set aside), with the two request templates
 * (their xid is overwritten). An exchange without its reply in timeoutMs is lost.
 */
export async function pacedBurst(
  sock: dgram.Socket,
  discover: Buffer,
  request: Buffer,
  o: { rate: number; count: number; timeoutMs?: number },
): Promise<BurstResult> {
  const { rate, count } = o;
  const timeoutMs = o.timeoutMs ?? 1000;
  const xid0 = (Math.random() * 0x7fffffff) >>> 0;
  const dRing = Array.from({ length: RING }, () => Buffer.from(discover));
  const rRing = Array.from({ length: RING }, () => Buffer.from(request));
  const sentD = new Float64Array(count).fill(NaN);
  const sentR = new Float64Array(count).fill(NaN);
  const gotO = new Float64Array(count).fill(NaN);
  const gotA = new Float64Array(count).fill(NaN);
  const monoD = new Float64Array(count).fill(NaN);
  const monoO = new Float64Array(count).fill(NaN);
  const monoR = new Float64Array(count).fill(NaN);
  const monoA = new Float64Array(count).fill(NaN);
  let done = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((r) => (finish = r));
  const onMessage = (msg: Buffer): void => {
    const at = performance.now();
    if (msg.length < OPTIONS_OFFSET) return;
    const k = (msg.readUInt32BE(4) - xid0) >>> 0;
    if (k >= count) return;
    const t = messageType(msg);
    if (t === MessageType.OFFER && Number.isNaN(gotO[k]!)) {
      gotO[k] = at;
      monoO[k] = mono();
      const r = rRing[k % RING]!;
      r.writeUInt32BE((xid0 + k) >>> 0, 4);
      sentR[k] = performance.now();
      monoR[k] = mono();
      sock.send(r, 67, '255.255.255.255');
    } else if (t === MessageType.ACK && !Number.isNaN(sentR[k]!) && Number.isNaN(gotA[k]!)) {
      gotA[k] = at;
      monoA[k] = mono();
      if (++done === count) finish();
    }
  };
  sock.on('message', onMessage);
  try {
    const t0 = performance.now();
    const period = 1000 / rate;
    let next = 0;
    while (next < count) {
      const now = performance.now();
      while (next < count && t0 + next * period <= now) {
        const d = dRing[next % RING]!;
        d.writeUInt32BE((xid0 + next) >>> 0, 4);
        sentD[next] = performance.now();
        monoD[next] = mono();
        sock.send(d, 67, '255.255.255.255');
        next++;
      }
      const wait = t0 + next * period - performance.now();
      await new Promise((r) => setTimeout(r, Math.max(0, wait)));
    }
    await Promise.race([finished, new Promise((r) => setTimeout(r, timeoutMs))]);
  } finally {
    sock.off('message', onMessage);
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
  return { offer, ack, lost, times: { discover: monoD, offer: monoO, request: monoR, ack: monoA } };
}
