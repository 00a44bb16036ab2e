// The server's state machine, handleRequest(ctx, req), without sockets: a context built as
// server.ts builds it (resolved leases, empty bindings, fresh counters, an injected clock
// and a recording logger), requests encoded and decoded as they come off the wire, and the
// replies checked as they go onto it. RFC 2131 4.3 (DISCOVER, REQUEST in SELECTING,
// INIT-REBOOT, RENEWING and REBINDING, DECLINE, RELEASE, INFORM), table 3 (what each reply
// carries), RFC 2132 9.8/9.10 (parameter request list, maximum message size), RFC 3442
// (the default route in option 121), RFC 6842/3046 (echoed client id and relay info).
import { describe, expect, it } from 'vitest';
import { FLAG_BROADCAST, MessageType, Opt } from '../../src/dhcp/constants';
import { newCounters } from '../../src/dhcp/counters';
import { handleRequest, type HandlerContext } from '../../src/dhcp/handler';
import { RateLimiter } from '../../src/util/rate-limit';
import { ipv4ToBuffer } from '../../src/dhcp/ipv4';
import { resolveLeases, type StaticLease } from '../../src/dhcp/lease';
import {
  ClasslessRoutesOption,
  DomainSearchOption,
  DurationOption,
  IpListOption,
  IpOption,
  ParameterListOption,
  TextOption,
  Uint16Option,
} from '../../src/dhcp/options';
import { DhcpPacket } from '../../src/dhcp/packet';
import type { Logger } from '../../src/util/log';

const SID = '169.254.254.2';
const MAC = '02:42:0a:4d:00:05';
const IP = '10.77.0.5';
const GW = '10.77.0.1';
const T0 = 1_700_000_000_000;

const LEASE: StaticLease = {
  mac: MAC,
  ip: IP,
  prefixLen: 24,
  routers: [GW],
  classlessRoutes: [
    { dst: `${SID}/32`, gw: '0.0.0.0' },
    { dst: '10.96.0.0/12', gw: GW },
    { dst: '0.0.0.0/0', gw: GW },
  ],
  dns: ['10.96.0.10', '10.96.0.11'],
  search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
  domain: 'cluster.local',
  hostname: 'pod-a',
  mtu: 1450,
};

interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown> | undefined;
}

/** A context as DhcpServer.start() builds one, minus the socket; the clock is settable. */
function context(leases: StaticLease[] = [LEASE]) {
  const lines: LogLine[] = [];
  const rec =
    (level: LogLine['level']) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, msg, fields });
    };
  const log: Logger = {
    debug: rec('debug'),
    info: rec('info'),
    warn: rec('warn'),
    error: rec('error'),
    child: () => log,
  };
  const clock = { now: T0 };
  const ctx: HandlerContext = {
    serverId: SID,
    serverIdBytes: ipv4ToBuffer(SID),
    leases: resolveLeases(leases),
    bindings: new Map(),
    counters: newCounters(),
    log,
    now: () => clock.now,
  };
  return { ctx, lines, clock };
}

interface Req {
  mac?: string;
  htype?: number;
  op?: number;
  xid?: number;
  ciaddr?: string;
  giaddr?: string;
  broadcast?: boolean;
  /** option 54 */
  sid?: string;
  /** option 50 */
  requested?: string;
  /** option 55 */
  prl?: number[];
  /** option 57 */
  maxSize?: number;
  /** option 61 */
  clientId?: Buffer;
  /** option 82 */
  relayInfo?: Buffer;
}

/** A client message as the server sees it: encoded, then decoded. type undefined = plain BOOTP. */
function request(type: number | undefined, r: Req = {}): DhcpPacket {
  const p = new DhcpPacket().setMac(r.mac ?? MAC);
  p.op = r.op ?? 1;
  p.htype = r.htype ?? 1;
  p.xid = r.xid ?? 0x5eed;
  p.ciaddr = r.ciaddr ?? '0.0.0.0';
  p.giaddr = r.giaddr ?? '0.0.0.0';
  if (r.broadcast) p.flags = FLAG_BROADCAST;
  if (type !== undefined) p.options.set(Opt.MESSAGE_TYPE, Buffer.from([type]));
  if (r.sid) p.set(Opt.SERVER_ID, new IpOption(r.sid));
  if (r.requested) p.set(Opt.REQUESTED_IP, new IpOption(r.requested));
  if (r.prl) p.set(Opt.PARAMETER_REQUEST_LIST, new ParameterListOption(r.prl));
  if (r.maxSize !== undefined) p.set(Opt.MAX_MESSAGE_SIZE, new Uint16Option(r.maxSize));
  if (r.clientId) p.options.set(Opt.CLIENT_ID, r.clientId);
  if (r.relayInfo) p.options.set(Opt.RELAY_AGENT_INFO, r.relayInfo);
  return DhcpPacket.decode(p.encode());
}

interface Sent {
  packet: DhcpPacket;
  wire: Buffer;
  /** option codes in the order they are on the wire */
  codes: number[];
}

/** Option codes of an encoded message in wire order (no overload in replies). */
function wireCodes(buf: Buffer): number[] {
  const codes: number[] = [];
  for (let i = 240; i < buf.length && buf[i] !== 255;) {
    if (buf[i] === 0) {
      i++;
      continue;
    }
    if (codes.at(-1) !== buf[i]) codes.push(buf[i]!);
    i += 2 + buf[i + 1]!;
  }
  return codes;
}

/** handleRequest, with the reply as it goes onto the wire and back. */
function handle(ctx: HandlerContext, req: DhcpPacket): Sent | undefined {
  const reply = handleRequest(ctx, req);
  if (!reply) return undefined;
  const wire = reply.encode();
  return { packet: DhcpPacket.decode(wire), wire, codes: wireCodes(wire) };
}

/** Which options, whatever their order (order has its own tests). */
const sorted = (codes: number[]): number[] => [...codes].sort((a, b) => a - b);

function must(s: Sent | undefined): Sent {
  expect(s, 'a reply').toBeDefined();
  return s!;
}

const selecting = (r: Req = {}) => request(MessageType.REQUEST, { sid: SID, requested: IP, ...r });

describe('DISCOVER -> OFFER (RFC 2131 4.3.1)', () => {
  it('offers the static lease with the server id, echoing xid, flags, giaddr and chaddr', () => {
    const { ctx } = context();
    const o = must(handle(ctx, request(MessageType.DISCOVER, { xid: 0xfeedbeef, broadcast: true })));
    const p = o.packet;
    expect(p.messageType).toBe(MessageType.OFFER);
    expect(p).toMatchObject({ op: 2, htype: 1, hlen: 6, xid: 0xfeedbeef, flags: 0x8000, yiaddr: IP });
    expect(p).toMatchObject({ ciaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0' });
    expect(p.mac).toBe(MAC);
    expect(p.get(Opt.SERVER_ID, IpOption)?.address).toBe(SID);
    expect(p.get(Opt.SUBNET_MASK, IpOption)?.address).toBe('255.255.255.0');
    expect(p.get(Opt.ROUTER, IpListOption)?.addresses).toEqual([GW]);
    expect(p.get(Opt.LEASE_TIME, DurationOption)?.seconds).toBe(3600);
    expect(ctx.bindings.get(MAC)?.state).toBe('offered');
    expect(ctx.counters).toMatchObject({ discover: 1, offer: 1, ack: 0 });
  });

  it('without a parameter request list every option of the lease is in the offer', () => {
    const { ctx } = context();
    const o = must(handle(ctx, request(MessageType.DISCOVER)));
    expect(sorted(o.codes)).toEqual(sorted([53, 1, 3, 6, 12, 15, 26, 28, 51, 54, 58, 59, 119, 121]));
  });

  it('every option value is the one the lease asks for', () => {
    const { ctx } = context();
    const p = must(handle(ctx, request(MessageType.DISCOVER))).packet;
    expect(p.get(Opt.HOSTNAME, TextOption)?.text).toBe('pod-a'); // 12
    expect(p.get(Opt.INTERFACE_MTU, Uint16Option)?.value).toBe(1450); // 26
    expect(p.get(Opt.DNS, IpListOption)?.addresses).toEqual(['10.96.0.10', '10.96.0.11']); // 6
    expect(p.get(Opt.DOMAIN_NAME, TextOption)?.text).toBe('cluster.local'); // 15
    expect(p.get(Opt.DOMAIN_SEARCH, DomainSearchOption)?.names).toEqual(LEASE.search); // 119
    expect(p.get(Opt.BROADCAST_ADDRESS, IpOption)?.address).toBe('10.77.0.255'); // 28
    expect(p.get(Opt.LEASE_TIME, DurationOption)?.seconds).toBe(3600); // 51, default
    expect(p.get(Opt.RENEWAL_TIME, DurationOption)?.seconds).toBe(1800); // 58: 50%
    expect(p.get(Opt.REBINDING_TIME, DurationOption)?.seconds).toBe(3150); // 59: 87.5%
    expect(p.get(Opt.SERVER_ID, IpOption)?.address).toBe(SID); // 54
    expect(p.get(Opt.CLASSLESS_ROUTES, ClasslessRoutesOption)?.routes).toEqual(LEASE.classlessRoutes); // 121
  });

  it('configured lease times are sent as configured; an infinite lease has no T1/T2', () => {
    const { ctx } = context([{ ...LEASE, leaseTime: 600, renewalTime: 100, rebindingTime: 500 }]);
    const p = must(handle(ctx, request(MessageType.DISCOVER))).packet;
    expect(p.get(Opt.LEASE_TIME, DurationOption)?.seconds).toBe(600);
    expect(p.get(Opt.RENEWAL_TIME, DurationOption)?.seconds).toBe(100);
    expect(p.get(Opt.REBINDING_TIME, DurationOption)?.seconds).toBe(500);

    const inf = context([{ ...LEASE, leaseTime: 0xffffffff }]);
    const q = must(handle(inf.ctx, request(MessageType.DISCOVER))).packet;
    expect(q.options.get(Opt.LEASE_TIME)).toEqual(Buffer.from('ffffffff', 'hex'));
    expect(q.options.has(Opt.RENEWAL_TIME) || q.options.has(Opt.REBINDING_TIME)).toBe(false);
    must(handle(inf.ctx, selecting()));
    expect(inf.ctx.bindings.get(MAC)).toMatchObject({ state: 'bound', expiresAt: undefined });
  });

  it('echoes the client identifier (RFC 6842) and relay agent information (RFC 3046 2.2), keeps giaddr', () => {
    const { ctx } = context();
    const clientId = Buffer.from('0102420a4d0005', 'hex');
    const relayInfo = Buffer.from('0104000000010206aabbccddeeff', 'hex');
    const o = must(handle(ctx, request(MessageType.DISCOVER, { clientId, relayInfo, giaddr: '10.1.0.1' })));
    expect(o.packet.options.get(Opt.CLIENT_ID)).toEqual(clientId);
    expect(o.packet.options.get(Opt.RELAY_AGENT_INFO)).toEqual(relayInfo);
    expect(o.packet.giaddr).toBe('10.1.0.1');
    expect(o.codes.at(-1)).toBe(Opt.RELAY_AGENT_INFO); // RFC 3046 2.1: last
  });

  it('a DISCOVER does not undo a binding: bound stays bound', () => {
    const { ctx } = context();
    must(handle(ctx, selecting()));
    must(handle(ctx, request(MessageType.DISCOVER)));
    expect(ctx.bindings.get(MAC)?.state).toBe('bound');
  });

  it('every reply is at least 300 bytes (RFC 1542 2.1)', () => {
    const { ctx } = context([{ ...LEASE, classlessRoutes: [], dns: [], search: [] }]);
    const o = must(handle(ctx, request(MessageType.DISCOVER, { prl: [1] })));
    expect(o.wire.length).toBe(300);
    const n = must(handle(ctx, request(MessageType.REQUEST, { requested: '10.0.0.9' })));
    expect(n.wire.length).toBe(300);
  });
});

describe('REQUEST (RFC 2131 4.3.2)', () => {
  it('SELECTING, our server id and the offered address: ACK, bound until now + lease time', () => {
    const { ctx, lines } = context();
    handle(ctx, request(MessageType.DISCOVER));
    const a = must(handle(ctx, selecting()));
    expect(a.packet.messageType).toBe(MessageType.ACK);
    expect(a.packet).toMatchObject({ yiaddr: IP, ciaddr: '0.0.0.0' });
    expect(a.packet.get(Opt.SERVER_ID, IpOption)?.address).toBe(SID);
    expect(a.packet.get(Opt.LEASE_TIME, DurationOption)?.seconds).toBe(3600);
    expect(ctx.bindings.get(MAC)).toEqual({ state: 'bound', boundAt: T0, expiresAt: T0 + 3600_000 });
    expect(ctx.counters).toMatchObject({ requestSelecting: 1, ack: 1, nak: 0 });
    expect(lines.filter((l) => l.msg === 'lease bound')).toMatchObject([
      { level: 'info', fields: { mac: MAC, ip: IP, kind: 'selecting' } },
    ]);
  });

  it('SELECTING, another server id: silence, and our offer is forgotten', () => {
    const { ctx } = context();
    handle(ctx, request(MessageType.DISCOVER));
    expect(handle(ctx, selecting({ sid: '10.77.0.254' }))).toBeUndefined();
    expect(ctx.bindings.get(MAC)?.state).toBe('none');
    expect(ctx.counters).toMatchObject({ otherServer: 1, ack: 0, nak: 0 });
  });

  it('SELECTING, our server id but not the offered address: NAK', () => {
    const { ctx } = context();
    const n = must(handle(ctx, selecting({ requested: '10.77.0.6' })));
    expect(n.packet.messageType).toBe(MessageType.NAK);
    expect(ctx.bindings.get(MAC)?.state ?? 'none').not.toBe('bound');
  });

  it('INIT-REBOOT, the right remembered address: ACK', () => {
    const { ctx } = context();
    const a = must(handle(ctx, request(MessageType.REQUEST, { requested: IP })));
    expect(a.packet.messageType).toBe(MessageType.ACK);
    expect(a.packet.yiaddr).toBe(IP);
    expect(ctx.counters).toMatchObject({ requestInitReboot: 1, ack: 1 });
    expect(ctx.bindings.get(MAC)?.state).toBe('bound');
  });

  it('INIT-REBOOT, a wrong address: NAK with server id and message, nothing else of the lease (table 3)', () => {
    const { ctx, lines } = context();
    const clientId = Buffer.from('01aabb', 'hex');
    const n = must(handle(ctx, request(MessageType.REQUEST, { requested: '192.168.1.20', xid: 77, clientId })));
    const p = n.packet;
    expect(p.messageType).toBe(MessageType.NAK);
    expect(p).toMatchObject({ op: 2, xid: 77, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0' });
    expect(sorted(n.codes)).toEqual(sorted([Opt.MESSAGE_TYPE, Opt.SERVER_ID, Opt.MESSAGE, Opt.CLIENT_ID]));
    expect(p.get(Opt.SERVER_ID, IpOption)?.address).toBe(SID);
    expect(p.get(Opt.MESSAGE, TextOption)?.text).toContain('192.168.1.20');
    expect(ctx.counters).toMatchObject({ requestInitReboot: 1, nak: 1, ack: 0 });
    expect(ctx.bindings.get(MAC)?.state ?? 'none').toBe('none');
    expect(lines).toContainEqual(expect.objectContaining({ level: 'info', msg: 'NAK' }));
  });

  it('RENEWING (ciaddr, no server id, no requested address): ACK to the bound address, lease extended', () => {
    const { ctx, lines, clock } = context();
    must(handle(ctx, selecting()));
    clock.now = T0 + 1800_000; // T1
    const a = must(handle(ctx, request(MessageType.REQUEST, { ciaddr: IP })));
    expect(a.packet.messageType).toBe(MessageType.ACK);
    expect(a.packet).toMatchObject({ yiaddr: IP, ciaddr: IP });
    expect(a.packet.get(Opt.LEASE_TIME, DurationOption)?.seconds).toBe(3600);
    expect(ctx.bindings.get(MAC)).toEqual({ state: 'bound', boundAt: clock.now, expiresAt: clock.now + 3600_000 });
    expect(ctx.counters).toMatchObject({ requestRenewOrRebind: 1, ack: 2 });
    // the first binding is news, a renewal of a live one is not
    expect(lines.filter((l) => l.msg === 'lease bound').map((l) => [l.level, l.fields?.kind])).toEqual([
      ['info', 'selecting'],
      ['debug', 'renew'],
    ]);
  });

  it('REBINDING (ciaddr, broadcast): ACK; a lease that had run out is logged as bound anew', () => {
    const { ctx, lines, clock } = context();
    must(handle(ctx, selecting()));
    clock.now = T0 + 3600_000; // expired
    const a = must(handle(ctx, request(MessageType.REQUEST, { ciaddr: IP, broadcast: true })));
    expect(a.packet.messageType).toBe(MessageType.ACK);
    expect(a.packet).toMatchObject({ yiaddr: IP, ciaddr: IP, flags: 0x8000 });
    expect(lines.filter((l) => l.msg === 'lease bound').map((l) => l.level)).toEqual(['info', 'info']);
  });

  it('RENEWING or REBINDING from an address that is not the lease: NAK', () => {
    const { ctx } = context();
    const n = must(handle(ctx, request(MessageType.REQUEST, { ciaddr: '10.77.0.99' })));
    expect(n.packet.messageType).toBe(MessageType.NAK);
    expect(n.packet.ciaddr).toBe('0.0.0.0');
    expect(ctx.counters).toMatchObject({ requestRenewOrRebind: 1, nak: 1 });
  });

  it('a REQUEST naming no address at all: silence', () => {
    const { ctx } = context();
    expect(handle(ctx, request(MessageType.REQUEST))).toBeUndefined();
    expect(ctx.counters).toMatchObject({ unexpected: 1, ack: 0, nak: 0 });
  });

  it('SELECTING without option 50 wants its ciaddr; an option 50 or 54 that is not 4 bytes counts as absent', () => {
    const { ctx } = context();
    const text = (s: Sent): string | undefined => s.packet.get(Opt.MESSAGE, TextOption)?.text;
    expect(must(handle(ctx, selecting({ requested: '', ciaddr: IP }))).packet.messageType).toBe(MessageType.ACK);
    expect(text(must(handle(ctx, selecting({ requested: '', ciaddr: '10.77.0.9' }))))).toBe(
      `requested address 10.77.0.9 is not ${IP}`,
    );
    expect(text(must(handle(ctx, selecting({ requested: '' }))))).toBe(`requested address none is not ${IP}`);
    expect(text(must(handle(ctx, selecting({ requested: '10.77.0.6' }))))).toBe(
      `requested address 10.77.0.6 is not ${IP}`,
    );
    expect(ctx.counters).toMatchObject({ requestSelecting: 4, ack: 1, nak: 3 });
    const shortSid = selecting();
    shortSid.options.set(Opt.SERVER_ID, Buffer.from([169, 254, 254]));
    expect(must(handle(ctx, shortSid)).packet.messageType).toBe(MessageType.ACK); // INIT-REBOOT
    expect(ctx.counters).toMatchObject({ requestSelecting: 4, requestInitReboot: 1, otherServer: 0 });
    const longRequested = selecting();
    longRequested.options.set(Opt.REQUESTED_IP, Buffer.from([10, 77, 0, 5, 0]));
    expect(text(must(handle(ctx, longRequested)))).toBe(`requested address none is not ${IP}`);
  });

  it('a NAK through a relay has the broadcast bit set, so the relay broadcasts it (RFC 2131 4.3.2)', () => {
    const { ctx } = context();
    const n = must(handle(ctx, request(MessageType.REQUEST, { requested: '10.0.0.9', giaddr: '10.1.0.1' })));
    expect(n.packet.messageType).toBe(MessageType.NAK);
    expect(n.packet.giaddr).toBe('10.1.0.1');
    expect(n.packet.broadcast).toBe(true);
    // not without a relay: the flags are the client's
    const direct = must(handle(ctx, request(MessageType.REQUEST, { requested: '10.0.0.9' })));
    expect(direct.packet.flags).toBe(0);
  });
});

describe('DECLINE, RELEASE, INFORM (RFC 2131 4.3.3 - 4.3.5)', () => {
  it('DECLINE: no reply, logged at warn (a guest report, not a daemon failure) with the address, state declined through DISCOVERs', () => {
    const { ctx, lines, clock } = context();
    must(handle(ctx, selecting()));
    clock.now = T0 + 5000;
    const decline = request(MessageType.DECLINE, { sid: SID, requested: IP });
    decline.set(Opt.MESSAGE, new TextOption('ARP reply from 02:00:00:00:00:99'));
    expect(handle(ctx, DhcpPacket.decode(decline.encode()))).toBeUndefined();
    expect(ctx.bindings.get(MAC)).toMatchObject({ state: 'declined', declinedAt: T0 + 5000, expiresAt: undefined });
    expect(ctx.counters.decline).toBe(1);
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/DECLINE.*in use/);
    expect(warnings[0]!.fields).toEqual({ mac: MAC, ip: IP, message: 'ARP reply from 02:00:00:00:00:99' });
    // the pod address is the only one there is: it is offered again, the state remembers the decline
    must(handle(ctx, request(MessageType.DISCOVER)));
    expect(ctx.bindings.get(MAC)?.state).toBe('declined');
    must(handle(ctx, selecting()));
    expect(ctx.bindings.get(MAC)?.state).toBe('bound');
  });

  it('a guest flooding NAKs, DECLINEs and RELEASEs gets a burst of lines per kind, then one per interval saying how many were left out', () => {
    const { ctx, lines, clock } = context();
    ctx.logLimit = new RateLimiter({ burst: 3, intervalMs: 10_000 }, () => clock.now);
    const flood = (n: number): void => {
      for (let i = 0; i < n; i++) {
        must(handle(ctx, request(MessageType.REQUEST, { requested: '192.168.1.20' })));
        handle(ctx, request(MessageType.DECLINE, { sid: SID, requested: IP }));
        handle(ctx, request(MessageType.RELEASE, { sid: SID, ciaddr: IP }));
      }
    };
    flood(5000);
    const count = (msg: RegExp): number => lines.filter((l) => msg.test(l.msg)).length;
    expect([count(/^NAK$/), count(/^DECLINE/), count(/released/)]).toEqual([3, 3, 3]);
    expect(ctx.counters).toMatchObject({ nak: 5000, decline: 5000, release: 5000, logLinesSuppressed: 3 * 4997 });
    // an interval later one more of each passes, carrying the count it stands for
    clock.now += 10_000;
    flood(1);
    expect(lines.filter((l) => l.msg === 'NAK').at(-1)!.fields).toMatchObject({ suppressed: 4997 });
    expect(lines.filter((l) => /^DECLINE/.test(l.msg)).at(-1)).toMatchObject({
      level: 'warn',
      fields: { suppressed: 4997 },
    });
    expect(lines).toHaveLength(12);
  });

  it('DECLINE or RELEASE naming another server is ignored', () => {
    const { ctx } = context();
    must(handle(ctx, selecting()));
    expect(handle(ctx, request(MessageType.DECLINE, { sid: '10.0.0.254', requested: IP }))).toBeUndefined();
    expect(handle(ctx, request(MessageType.RELEASE, { sid: '10.0.0.254', ciaddr: IP }))).toBeUndefined();
    expect(ctx.bindings.get(MAC)?.state).toBe('bound');
    expect(ctx.counters).toMatchObject({ otherServer: 2, decline: 0, release: 0 });
  });

  it('RELEASE: no reply, state released, no expiry', () => {
    const { ctx, lines } = context();
    must(handle(ctx, selecting()));
    expect(handle(ctx, request(MessageType.RELEASE, { sid: SID, ciaddr: IP }))).toBeUndefined();
    expect(ctx.bindings.get(MAC)).toMatchObject({ state: 'released', expiresAt: undefined });
    expect(ctx.counters.release).toBe(1);
    expect(lines).toContainEqual(expect.objectContaining({ level: 'info', msg: 'lease released' }));
  });

  it('INFORM: ACK with the configuration to ciaddr, no yiaddr and no lease time (4.3.5), binding untouched', () => {
    const { ctx } = context();
    const a = must(handle(ctx, request(MessageType.INFORM, { ciaddr: IP })));
    const p = a.packet;
    expect(p.messageType).toBe(MessageType.ACK);
    expect(p).toMatchObject({ ciaddr: IP, yiaddr: '0.0.0.0' });
    for (const code of [Opt.LEASE_TIME, Opt.RENEWAL_TIME, Opt.REBINDING_TIME]) expect(p.options.has(code)).toBe(false);
    expect(p.get(Opt.SERVER_ID, IpOption)?.address).toBe(SID);
    expect(p.get(Opt.DNS, IpListOption)?.addresses).toEqual(LEASE.dns);
    expect(ctx.bindings.has(MAC)).toBe(false);
    expect(ctx.counters).toMatchObject({ inform: 1, ack: 1 });
  });
});

describe('who gets nothing', () => {
  it('a MAC without a lease, whatever it sends', () => {
    const { ctx } = context();
    const other = '02:42:0a:4d:00:06';
    for (const t of [1, 3, 4, 7, 8]) {
      expect(handle(ctx, request(t, { mac: other, sid: SID, requested: IP, ciaddr: IP })), `type ${t}`).toBeUndefined();
    }
    expect(ctx.counters.unknownMac).toBe(5);
    expect(ctx.bindings.size).toBe(0);
  });

  it('our MAC bytes with another hardware type or length', () => {
    const { ctx } = context();
    expect(handle(ctx, request(MessageType.DISCOVER, { htype: 6 }))).toBeUndefined();
    expect(handle(ctx, request(MessageType.DISCOVER, { mac: `${MAC}:00` }))).toBeUndefined();
    expect(ctx.counters.unknownMac).toBe(2);
  });

  it('plain BOOTP (no message type) and BOOTREPLYs', () => {
    const { ctx } = context();
    expect(handle(ctx, request(undefined))).toBeUndefined();
    expect(handle(ctx, request(MessageType.DISCOVER, { op: 2 }))).toBeUndefined();
    expect(ctx.counters.notDhcpRequest).toBe(2);
  });

  it('message types only a server sends', () => {
    const { ctx } = context();
    for (const t of [MessageType.OFFER, MessageType.ACK, MessageType.NAK, 9, 0]) {
      expect(handle(ctx, request(t)), `type ${t}`).toBeUndefined();
    }
    expect(ctx.counters.unexpected).toBe(5);
  });
});

describe('parameter request list (RFC 2132 9.8) and maximum message size (9.10)', () => {
  it('sends only the requested extras beyond what always goes (53, 54, 1, 3, 51, 58, 59)', () => {
    const { ctx } = context();
    const o = must(handle(ctx, request(MessageType.DISCOVER, { prl: [1, 3, 6, 15, 119] })));
    expect(sorted(o.codes)).toEqual(sorted([53, 1, 3, 6, 15, 51, 54, 58, 59, 119]));
    const none = must(handle(ctx, request(MessageType.DISCOVER, { prl: [42, 51, 54, 66] })));
    expect(sorted(none.codes)).toEqual(sorted([53, 1, 3, 51, 54, 58, 59]));
  });

  it('the lists of the real clients', () => {
    const { ctx } = context();
    // busybox udhcpc 1.35: 1 3 6 12 15 28 42 119 121
    const u = must(handle(ctx, request(MessageType.DISCOVER, { prl: [1, 3, 6, 12, 15, 28, 42, 119, 121] })));
    expect(sorted(u.codes)).toEqual(sorted([53, 1, 3, 6, 12, 15, 28, 51, 54, 58, 59, 119, 121]));
    // ISC dhclient (test config): 28 3 15 6 119 12 26 121
    const d = must(handle(ctx, request(MessageType.DISCOVER, { prl: [28, 3, 15, 6, 119, 12, 26, 121] })));
    expect(sorted(d.codes)).toEqual(sorted([53, 1, 3, 6, 12, 15, 26, 28, 51, 54, 58, 59, 119, 121]));
  });

  it('121 asked for: sent with the default route in it, and option 3 still sent (RFC 3442)', () => {
    const { ctx } = context();
    const p = must(handle(ctx, request(MessageType.DISCOVER, { prl: [121] }))).packet;
    expect(p.get(Opt.CLASSLESS_ROUTES, ClasslessRoutesOption)?.routes).toContainEqual({ dst: '0.0.0.0/0', gw: GW });
    expect(p.get(Opt.ROUTER, IpListOption)?.addresses).toEqual([GW]);
  });

  it('a lease with routers but no default route in its 121 still gets one there, last (RFC 3442)', () => {
    // tapmanager's shape when the veth has no default route but CNI names a gateway
    const { ctx } = context([{ ...LEASE, classlessRoutes: [{ dst: `${SID}/32`, gw: '0.0.0.0' }] }]);
    const p = must(handle(ctx, request(MessageType.DISCOVER, { prl: [3, 121] }))).packet;
    expect(p.get(Opt.CLASSLESS_ROUTES, ClasslessRoutesOption)?.routes).toEqual([
      { dst: `${SID}/32`, gw: '0.0.0.0' },
      { dst: '0.0.0.0/0', gw: GW },
    ]);
    expect(p.get(Opt.ROUTER, IpListOption)?.addresses).toEqual([GW]);
  });

  it('no routers: no option 3 and no default route is invented', () => {
    const { ctx } = context([{ ...LEASE, routers: [], classlessRoutes: [{ dst: `${SID}/32`, gw: '0.0.0.0' }] }]);
    const p = must(handle(ctx, request(MessageType.DISCOVER))).packet;
    expect(p.options.has(Opt.ROUTER)).toBe(false);
    expect(p.get(Opt.CLASSLESS_ROUTES, ClasslessRoutesOption)?.routes).toEqual([{ dst: `${SID}/32`, gw: '0.0.0.0' }]);
  });

  it('the default route already in 121 is not added twice', () => {
    const { ctx } = context();
    const p = must(handle(ctx, request(MessageType.DISCOVER))).packet;
    const routes = p.get(Opt.CLASSLESS_ROUTES, ClasslessRoutesOption)!.routes;
    expect(routes.filter((r) => r.dst === '0.0.0.0/0')).toHaveLength(1);
  });

  it('the subnet mask goes before the router (RFC 2132 3.3), the message type first', () => {
    const { ctx } = context();
    const o = must(handle(ctx, request(MessageType.DISCOVER, { prl: [3, 1] })));
    expect(o.codes[0]).toBe(Opt.MESSAGE_TYPE);
    expect(o.codes.indexOf(Opt.SUBNET_MASK)).toBeLessThan(o.codes.indexOf(Opt.ROUTER));
  });

  // RFC 2132 9.8: the server "MUST try to insert the requested options in the order requested
  // by the client".
  it('requested options are on the wire in the order of the parameter request list', () => {
    const { ctx } = context();
    const prl = [121, 26, 6, 12, 1, 3, 15, 119, 51];
    const o = must(handle(ctx, request(MessageType.DISCOVER, { prl })));
    const asked = o.codes.filter((c) => prl.includes(c));
    expect(asked).toEqual(prl.filter((c) => o.codes.includes(c)));
    expect(asked.slice(0, 4)).toEqual([121, 26, 6, 12]);
    expect(o.codes[0]).toBe(Opt.MESSAGE_TYPE);
    // not asked for, sent anyway (T1, T2): after the requested ones
    expect(o.codes.indexOf(Opt.RENEWAL_TIME)).toBeGreaterThan(o.codes.indexOf(Opt.LEASE_TIME));
  });

  // A lease whose optional options do not fit 576 bytes.
  const BIG: StaticLease = {
    ...LEASE,
    search: Array.from({ length: 10 }, (_, i) => `team-${i}.namespace-${i}.svc.cluster.local`), // 227 bytes
    dns: ['10.96.0.10', '10.96.0.11', '10.96.0.12'],
  };

  it('drops optional options, least preferred first, to fit the client maximum (576 -> 548 of DHCP)', () => {
    const { ctx } = context([BIG]);
    const prl = [1, 3, 6, 12, 15, 26, 121, 119];
    const full = must(handle(ctx, request(MessageType.DISCOVER, { prl, maxSize: 1500 })));
    expect(full.wire.length).toBeGreaterThan(548);
    expect(ctx.counters.optionsDropped).toBe(0);

    const o = must(handle(ctx, request(MessageType.DISCOVER, { prl, maxSize: 576 })));
    expect(o.wire.length).toBeLessThanOrEqual(576 - 28);
    expect(o.codes).not.toContain(119); // the last asked for goes first
    expect(o.codes).toEqual(expect.arrayContaining([53, 54, 1, 3, 51, 58, 59, 6, 121]));
    expect(ctx.counters.optionsDropped).toBe(1);
  });

  it('without option 57, or with one under 576, the limit is 576 (RFC 2132 9.10 minimum)', () => {
    for (const maxSize of [undefined, 300, 0]) {
      const { ctx } = context([BIG]);
      const o = must(handle(ctx, request(MessageType.DISCOVER, { prl: [6, 121, 12, 15, 26, 119], maxSize })));
      expect(o.wire.length, `57 = ${maxSize}`).toBeLessThanOrEqual(548);
      expect(o.codes).not.toContain(119);
    }
  });

  it('the preference order decides: 119 asked for first survives, the tail of the list is dropped', () => {
    const { ctx } = context([BIG]);
    const o = must(handle(ctx, request(MessageType.DISCOVER, { prl: [119, 6, 121, 12, 15, 26], maxSize: 576 })));
    expect(o.wire.length).toBeLessThanOrEqual(548);
    expect(sorted(o.codes)).toEqual(sorted([53, 1, 3, 6, 51, 54, 58, 59, 119, 121])); // 26, 15, 12 dropped, in that order
    expect(ctx.counters.optionsDropped).toBe(3);
  });
});
