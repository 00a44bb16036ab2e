// Answers the addon gives without a call into JS (native/udp4.cc, sock4Answer): a request
// the server answered with an OFFER or an ACK, received again with only its xid and secs
// changed (a DISCOVER or REQUEST retransmitted, the next boot's DISCOVER, every renewal of
// a client), gets the same reply with its xid from the poll callback: no V8 entry, no
// decode, no garbage. That is what a guest's request costs when the process wakes with
// cold caches after a sleep (the burst's OFFER p99: docs/dhcp-latency.md, session 16).
//
// The server keeps it true: an answer is learned only when sending the request again, in
// the state it left, would give the same reply and the same effects, so the addon's
// answers can be accounted later (sync): their counters added (the difference the request
// made when the JS path handled it), an ACK's binding renewed at its last use. What makes
// one stale is only ever done by the JS path (a DECLINE, RELEASE, another server chosen,
// new leases), after which the server forgets them all; an ACK lapses natively with its
// lease (the answer's ttl), so a rebinding after expiry is logged by the JS path as before.
import { SOCK4_ANSWER_MAX_BYTES, SOCK4_ANSWER_SLOTS, sock4Answer, sock4Answered, sock4Forget } from '../native';
import { newCounters, type DhcpCounters } from './counters';
import type { Binding, HandlerContext } from './handler';
import { Answer, type LeaseAnswer } from './reply';
import type { Response } from './respond';

/** The bytes of a request that may differ between its sendings: xid (4-7) and secs (8-9). */
const VARY: [number, number] = [4, 10];
/** The reply's bytes taken from the request: xid. */
const COPY: [number, number] = [4, 8];
/** Longer requests are not learned (a client's are 300-576 bytes): bounds what a guest can make us keep. */
const MAX_LEARNED = 1024;
const INFINITE = 0xffffffff;
/** The counters a replay adds to; a line left out by the rate limit is the first binding's (a replay's is debug). */
const KEYS = (Object.keys(newCounters()) as (keyof DhcpCounters)[]).filter((k) => k !== 'logLinesSuppressed');

interface Learned {
  answer: LeaseAnswer;
  /** the lease's binding (the same object as in ctx.bindings) */
  binding: Binding | undefined;
  leaseTime: number;
  /** what one more of these requests adds to the counters */
  effects: [keyof DhcpCounters, number][];
}

/** Whether replaying a request answered with `answer` leaves binding b as it is now. */
function holds(answer: LeaseAnswer, b: Binding | undefined): boolean {
  if (answer === Answer.INFORM_ACK) return true;
  if (answer === Answer.ACK) return b?.state === 'bound';
  return b !== undefined && (b.state === 'offered' || b.state === 'bound' || b.state === 'declined');
}

export class FastAnswers {
  private readonly slots: (Learned | undefined)[] = new Array<Learned | undefined>(SOCK4_ANSWER_SLOTS);
  private next = 0;
  private any = false;
  private readonly out = new Float64Array(2 * SOCK4_ANSWER_SLOTS);
  /** the counters before the request being handled (before()), without an allocation per datagram */
  private readonly snapshot = new Float64Array(KEYS.length);

  constructor(private readonly fd: number) {}

  /** Accounts what the addon answered since the last call: counters, an ACK's binding. */
  sync(ctx: HandlerContext): void {
    if (!this.any || sock4Answered(this.fd, this.out) === 0) return;
    const c = ctx.counters;
    for (let i = 0; i < this.slots.length; i++) {
      const hits = this.out[2 * i]!;
      const l = this.slots[i];
      if (hits === 0 || l === undefined) continue;
      for (const [k, n] of l.effects) c[k] += n * hits;
      const b = l.binding;
      if (l.answer === Answer.ACK && b !== undefined) {
        const last = this.out[2 * i + 1]!;
        if (last <= (b.boundAt ?? 0)) continue; // another slot of this binding was used later
        b.boundAt = last;
        b.expiresAt = l.leaseTime === INFINITE ? undefined : last + l.leaseTime * 1000;
      }
    }
  }

  /** Called as a datagram reaches the JS path (after sync): remembers the counters as they are. */
  before(c: DhcpCounters): void {
    for (let i = 0; i < KEYS.length; i++) this.snapshot[i] = c[KEYS[i]!];
  }

  /**
   * After the JS path handled a datagram, whatever came of it (also when it threw): forgets
   * every learned answer that no longer holds.
   */
  check(): void {
    if (!this.any) return;
    for (const l of this.slots) {
      if (l !== undefined && !holds(l.answer, l.binding)) {
        this.forget();
        return;
      }
    }
  }

  /**
   * After the JS path sent `reply` for `request` where it was meant to go (not by the
   * broadcast fallback), before() having been called as the request arrived: learns it when
   * it can be replayed as it is.
   */
  learn(ctx: HandlerContext, request: Buffer, reply: Response): void {
    const { answer, lease } = reply;
    if (answer === undefined || request.length > MAX_LEARNED || reply.bytes.length > SOCK4_ANSWER_MAX_BYTES) return;
    const b = ctx.bindings.get(lease.mac);
    if (!holds(answer, b)) return;
    const effects: [keyof DhcpCounters, number][] = [];
    for (let i = 0; i < KEYS.length; i++) {
      const k = KEYS[i]!;
      const d = ctx.counters[k] - this.snapshot[i]!;
      if (d !== 0) effects.push([k, d]);
    }
    const ack = answer === Answer.ACK && lease.leaseTime !== INFINITE;
    const slot = this.next;
    sock4Answer(this.fd, {
      slot,
      request,
      reply: reply.bytes,
      to: reply.to,
      vary: VARY,
      copy: COPY,
      // an ACK holds while its binding has not expired: from the ACK's boundAt, as expiresAt counts
      ttlMs: ack ? lease.leaseTime * 1000 : 0,
      usedAt: ack && b?.boundAt !== undefined ? b.boundAt : ctx.now(),
    });
    this.next = (slot + 1) % SOCK4_ANSWER_SLOTS;
    this.slots[slot] = { answer, binding: b, leaseTime: lease.leaseTime, effects };
    this.any = true;
  }

  /** Drops every learned answer (accounted first by the caller's sync). */
  forget(): void {
    if (!this.any) return;
    sock4Forget(this.fd);
    this.slots.fill(undefined);
    this.any = false;
  }

  /** After the socket was closed (which dropped the addon's answers; synced first): nothing to ask the fd again. */
  closed(): void {
    this.slots.fill(undefined);
    this.any = false;
  }
}
