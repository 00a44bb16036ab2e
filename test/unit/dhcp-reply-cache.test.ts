// The server's reply cache (reply-cache.ts) against the path that builds every reply: two
// contexts with the same leases and clock, one answering through handleRequest -> encode ->
// replyDestination, the other through respond() with a ReplyCache, fed the same requests in
// the same order. Every reply must be byte for byte the same, to the same place, with the
// same counters and bindings: randomised request shapes (with and without 55, 57, 61, 82,
// broadcast flag, relay, SELECTING / INIT-REBOOT / RENEWING, INFORM, NAKs, other servers,
// DECLINE/RELEASE in between) drawn from small pools so that shapes repeat and hit, and the
// fuzz fixture's hostile packets. Then the bound: a guest varying its list keeps at most
// SLOTS shapes, and an oversized shape is not kept.
import * as dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { FLAG_BROADCAST, MessageType, Opt } from '../../src/dhcp/constants';
import { newCounters } from '../../src/dhcp/counters';
import { replyDestination } from '../../src/dhcp/destination';
import { DecodeError } from '../../src/dhcp/errors';
import { handleRequest, type HandlerContext } from '../../src/dhcp/handler';
import { resolveLeases, type StaticLease } from '../../src/dhcp/lease';
import { IpListOption, IpOption, MessageTypeOption, Uint16Option } from '../../src/dhcp/options';
import { DhcpPacket } from '../../src/dhcp/packet';
import { CHURN_LIMIT, MAX_KEPT, ReplyCache, SLOTS } from '../../src/dhcp/reply-cache';
import { respond } from '../../src/dhcp/respond';
import { DhcpServer } from '../../src/dhcp/server';
import { macToBuffer } from '../../src/net/mac';
import { silentLogger } from '../../src/util/log';
import { makeCase, prng } from '../fixtures/dhcp-fuzz';

const SID = '169.254.254.2';

const LEASES: StaticLease[] = [
  {
    mac: '02:42:0a:4d:00:05',
    ip: '10.77.0.5',
    prefixLen: 24,
    routers: ['10.77.0.1'],
    classlessRoutes: [
      { dst: `${SID}/32`, gw: '0.0.0.0' },
      { dst: '10.96.0.0/12', gw: '10.77.0.1' },
    ],
    dns: ['10.96.0.10', '10.96.0.11'],
    search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
    domain: 'cluster.local',
    hostname: 'pod-a',
    mtu: 1450,
  },
  {
    // big enough that 57 makes the reply drop options; a boot file and TFTP server in the header
    mac: '02:42:0a:4d:00:06',
    ip: '10.77.0.6',
    prefixLen: 30,
    routers: [],
    classlessRoutes: [],
    dns: ['10.96.0.10'],
    search: ['a.example', 'b.example'],
    leaseTime: 0xffffffff,
    bootFileName: 'pxelinux.0',
    tftpServerName: 'tftp.example',
    ntpServers: ['10.77.0.1', '10.77.0.2'],
    privateOptions: [
      { option: 224, value: 'x'.repeat(200) },
      { option: 250, value: 'y'.repeat(120) },
    ],
  },
];
const MACS = [...LEASES.map((l) => l.mac), '02:42:0a:4d:00:07' /* no lease */];

function context(clock: { now: number }): HandlerContext {
  return {
    serverId: SID,
    serverIdBytes: Buffer.from([169, 254, 254, 2]),
    leases: resolveLeases(LEASES),
    bindings: new Map(),
    counters: newCounters(),
    log: silentLogger,
    now: () => clock.now,
  };
}

const PRLS: (number[] | undefined)[] = [
  undefined,
  [],
  [1, 3, 6, 12, 15, 28, 42, 121, 119, 26],
  [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42],
  [1, 121, 33, 3, 6, 15, 26, 28, 51, 54, 58, 59, 119],
  [250, 224, 66, 67, 1],
  [224, 250, 42, 119, 6, 15],
];
const MAX_SIZES = [undefined, 576, 300, 1500, 600, 65535];
const CLIENT_IDS = [
  undefined,
  Buffer.from([1, 2, 66, 10, 77, 0, 5]),
  Buffer.alloc(0),
  Buffer.from('ff00112233', 'hex'),
];
const RELAYS = [undefined, Buffer.from([1, 4, 0, 0, 0, 1, 2, 2, 0xab, 0xcd])];
const GIADDRS = ['0.0.0.0', '0.0.0.0', '0.0.0.0', '10.1.0.1'];

interface Shape {
  prl: number[] | undefined;
  max: number | undefined;
  cid: Buffer | undefined;
  relay: Buffer | undefined;
}

/** A request as a client (or a hostile guest) shapes them; shapes drawn skewed from a small pool, so they repeat. */
function randomRequest(rand: () => number, shapes: Shape[]): Buffer {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const shape = shapes[Math.floor(rand() ** 8 * shapes.length)]!;
  const mac = pick(MACS);
  const lease = LEASES.find((l) => l.mac === mac);
  const ip = lease?.ip ?? '10.77.0.9';
  const p = new DhcpPacket().setMac(mac);
  p.xid = Math.floor(rand() * 0x100000000);
  if (rand() < 0.3) p.flags = FLAG_BROADCAST;
  if (rand() < 0.05) p.flags |= 0x0101; // reserved bits: copied as they come
  p.giaddr = pick(GIADDRS);
  const kind = Math.floor(rand() * 12);
  const type = [1, 1, 1, 3, 3, 3, 3, 3, 8, 8, 4, 7][kind]!;
  p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(type));
  const wrong = rand() < 0.15;
  if (type === MessageType.REQUEST) {
    const how = Math.floor(rand() * 4);
    if (how === 0) {
      // SELECTING, maybe naming another server
      p.set(Opt.SERVER_ID, new IpOption(rand() < 0.1 ? '10.9.9.9' : SID));
      p.set(Opt.REQUESTED_IP, new IpOption(wrong ? '10.77.0.200' : ip));
    } else if (how === 1) {
      p.set(Opt.REQUESTED_IP, new IpOption(wrong ? '10.77.0.200' : ip)); // INIT-REBOOT
    } else if (how === 2) {
      p.ciaddr = wrong ? '10.77.0.201' : ip; // RENEWING / REBINDING
    } // else: names no address
  } else if (type === MessageType.INFORM || (type === MessageType.RELEASE && rand() < 0.8)) {
    p.ciaddr = wrong ? '10.77.0.202' : ip;
  } else if (type === MessageType.DISCOVER && rand() < 0.2) {
    p.ciaddr = ip; // a client that keeps its old address in a DISCOVER
  }
  if (shape.prl !== undefined) p.options.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from(shape.prl));
  if (shape.max !== undefined) p.set(Opt.MAX_MESSAGE_SIZE, new Uint16Option(shape.max));
  if (rand() < 0.05) p.options.set(Opt.MAX_MESSAGE_SIZE, Buffer.from([5])); // malformed: as if absent
  if (shape.cid !== undefined) p.options.set(Opt.CLIENT_ID, shape.cid);
  if (shape.relay !== undefined) p.options.set(Opt.RELAY_AGENT_INFO, shape.relay);
  if (rand() < 0.1) p.options.set(Opt.HOSTNAME, Buffer.from('guest'));
  return p.encode();
}

/** Runs each message through both paths and expects the same outcome. */
function compare(messages: Iterable<Buffer>): { replies: number; cache: ReplyCache; ctx: HandlerContext } {
  const clock = { now: 1_700_000_000_000 };
  const built = context(clock);
  const cached = context(clock);
  const cache = new ReplyCache();
  let replies = 0;
  let n = 0;
  for (const m of messages) {
    clock.now += 1000 * (n++ % 7); // some bindings run out between requests
    let a: DhcpPacket;
    let b: DhcpPacket;
    try {
      a = DhcpPacket.decode(m);
      b = DhcpPacket.decode(m);
    } catch (e) {
      if (e instanceof DecodeError) continue;
      throw e;
    }
    const reply = handleRequest(built, a);
    const r = respond(cached, cache, b, m, 67, 68);
    const want = reply && { bytes: reply.encode().toString('hex'), to: replyDestination(a, reply, 67, 68) };
    const got = r && { bytes: r.bytes.toString('hex'), to: r.to };
    expect(got, `request ${m.toString('hex')}`).toEqual(want);
    expect(cached.counters).toEqual(built.counters);
    expect(cached.bindings).toEqual(built.bindings);
    if (reply) replies++;
  }
  return { replies, cache, ctx: cached };
}

describe('the cached path answers byte for byte as the built one', () => {
  it('randomised clients: every shape of request, hits and misses alike', () => {
    const rand = prng(Number(process.env.DHCP_FUZZ_SEED ?? 20261202));
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
    const shapes = Array.from({ length: 12 }, () => ({
      prl: pick(PRLS),
      max: pick(MAX_SIZES),
      cid: pick(CLIENT_IDS),
      relay: pick(RELAYS),
    }));
    const msgs = Array.from({ length: 6000 }, () => randomRequest(rand, shapes));
    const { replies, cache, ctx } = compare(msgs);
    expect(replies).toBeGreaterThan(2000);
    expect(cache.hits).toBeGreaterThan(1000);
    expect(cache.misses).toBeGreaterThan(500);
    expect(ctx.counters.nak).toBeGreaterThan(100);
    expect(ctx.counters.optionsDropped).toBeGreaterThan(100);
    for (const lease of ctx.leases.values()) expect(cache.size(lease)).toBe(SLOTS);
  });

  it('hostile packets (the fuzz fixture: mutated real clients, random option areas)', () => {
    const rand = prng(Number(process.env.DHCP_FUZZ_SEED ?? 20240601));
    const msgs = Array.from({ length: 5000 }, () => makeCase(rand));
    // the fuzz fixture's lease is the first lease here: its MAC is in the real packets
    const { cache } = compare(msgs);
    expect(cache.hits).toBeGreaterThan(100);
  });

  it('the same request again and again: one kept shape, every reply the same but for its xid', () => {
    const rand = prng(7);
    const one = randomRequest(rand, [{ prl: PRLS[2], max: 576, cid: CLIENT_IDS[1], relay: undefined }]);
    const { cache, ctx } = compare(Array.from({ length: 50 }, () => one));
    const kept = [...ctx.leases.values()].map((l) => cache.size(l));
    expect(kept.reduce((s, n) => s + n, 0)).toBeLessThanOrEqual(1);
    if (cache.misses > 0) expect(cache.hits).toBe(49);
  });
});

describe('bounded', () => {
  it('a guest varying its parameter request list keeps at most SLOTS shapes per lease', () => {
    const clock = { now: 1_700_000_000_000 };
    const ctx = context(clock);
    const cache = new ReplyCache();
    const lease = ctx.leases.get(LEASES[0]!.mac)!;
    for (let i = 0; i < 1000; i++) {
      const p = new DhcpPacket().setMac(LEASES[0]!.mac);
      p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(MessageType.DISCOVER));
      p.options.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 3, i & 255, i >> 8]));
      const wire = p.encode();
      expect(respond(ctx, cache, DhcpPacket.decode(wire), wire, 67, 68)).toBeDefined();
      expect(cache.size(lease)).toBeLessThanOrEqual(SLOTS);
    }
    expect(cache.size(lease)).toBe(SLOTS);
    // a guest rotating more shapes than the slots: answered, no longer kept once it churns
    expect(cache.unkept).toBe(1000 - SLOTS - CHURN_LIMIT);
    // and a hit makes the lease's misses keepable again
    const again = new DhcpPacket().setMac(LEASES[0]!.mac);
    again.set(Opt.MESSAGE_TYPE, new MessageTypeOption(MessageType.DISCOVER));
    again.options.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 3, (SLOTS + CHURN_LIMIT - 1) & 255, 0]));
    const hitsBefore = cache.hits;
    const w = again.encode();
    respond(ctx, cache, DhcpPacket.decode(w), w, 67, 68);
    expect(cache.hits).toBe(hitsBefore + 1);
    const unkept = cache.unkept;
    const fresh = new DhcpPacket().setMac(LEASES[0]!.mac);
    fresh.set(Opt.MESSAGE_TYPE, new MessageTypeOption(MessageType.DISCOVER));
    fresh.options.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 3, 255, 255]));
    const f = fresh.encode();
    respond(ctx, cache, DhcpPacket.decode(f), f, 67, 68);
    expect(cache.unkept).toBe(unkept); // kept (replacing the oldest)
  });

  it(`a shape over ${MAX_KEPT} bytes (a long echoed client id) is answered, not kept`, () => {
    const clock = { now: 1_700_000_000_000 };
    const ctx = context(clock);
    const cache = new ReplyCache();
    const lease = ctx.leases.get(LEASES[0]!.mac)!;
    const p = new DhcpPacket().setMac(LEASES[0]!.mac);
    p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(MessageType.DISCOVER));
    p.options.set(Opt.CLIENT_ID, Buffer.alloc(1500, 7));
    const wire = p.encode();
    const r = respond(ctx, cache, DhcpPacket.decode(wire), wire, 67, 68);
    expect(r!.bytes.length).toBeGreaterThan(1500);
    expect(cache.size(lease)).toBe(0);
  });
});

describe('DhcpServer', () => {
  it('answers from the new leases after setLeases (the kept replies are dropped)', async () => {
    const client = dgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
    const lease = (dns: string): StaticLease => ({
      ...LEASES[0]!,
      ip: '127.0.0.1',
      prefixLen: 8,
      routers: [],
      dns: [dns],
    });
    const server = await DhcpServer.start({
      ifname: 'lo',
      serverId: '127.0.0.1',
      port: 0,
      clientPort: client.address().port,
      leases: [lease('10.96.0.10')],
    });
    try {
      const p = new DhcpPacket().setMac(LEASES[0]!.mac);
      p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(MessageType.DISCOVER));
      p.options.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 6]));
      const offer = async (): Promise<string | undefined> => {
        const got = new Promise<Buffer>((r) => client.once('message', r));
        client.send(p.encode(), server.localPort(), '127.0.0.1');
        return DhcpPacket.decode(await got)
          .get(Opt.DNS, IpListOption)
          ?.toString();
      };
      expect(await offer()).toBe('10.96.0.10');
      expect(await offer()).toBe('10.96.0.10');
      server.setLeases([lease('10.96.0.99')]);
      expect(await offer()).toBe('10.96.0.99');
    } finally {
      await server.close();
      client.close();
    }
  });
});

describe('LeaseMap', () => {
  it('finds a lease by the bytes of its MAC as by its text, through set, delete and clear', () => {
    const leases = resolveLeases(LEASES);
    for (const l of LEASES) {
      expect(leases.byBytes(macToBuffer(l.mac))).toBe(leases.get(l.mac));
      expect(leases.byBytes(Buffer.concat([Buffer.from([7, 7]), macToBuffer(l.mac)]), 2)).toBe(leases.get(l.mac));
    }
    expect(leases.byBytes(macToBuffer(MACS[2]!))).toBeUndefined();
    expect(leases.delete(LEASES[0]!.mac.toUpperCase())).toBe(false); // not a key: nothing removed
    expect(leases.byBytes(macToBuffer(LEASES[0]!.mac))).toBeDefined();
    expect(leases.delete(LEASES[0]!.mac)).toBe(true);
    expect(leases.byBytes(macToBuffer(LEASES[0]!.mac))).toBeUndefined();
    expect(leases.byBytes(macToBuffer(LEASES[1]!.mac))).toBe(leases.get(LEASES[1]!.mac));
    leases.clear();
    expect(leases.byBytes(macToBuffer(LEASES[1]!.mac))).toBeUndefined();
    expect(() => leases.set('02-42-0A-4D-00-05', resolveLeases(LEASES).get(LEASES[0]!.mac)!)).toThrow(TypeError);
  });
});
