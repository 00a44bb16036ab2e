// The DHCPv6 codec and state machine against RFC 8415 18.3, with no sockets.
import { describe, expect, it } from 'vitest';
import { MessageType, Opt6, Status } from '../../src/dhcp6/constants';
import { Dhcp6ConfigError, Dhcp6DecodeError } from '../../src/dhcp6/errors';
import { handleMessage6 } from '../../src/dhcp6/handler';
import { resolveLease6 } from '../../src/dhcp6/lease';
import { Dhcp6Message } from '../../src/dhcp6/message';
import {
  DomainListOption,
  DuidOption,
  IaAddrOption,
  IaOption,
  Ip6ListOption,
  StatusCodeOption,
} from '../../src/dhcp6/options';
import { REAL_PACKETS6 } from '../fixtures/dhcp6-packets';
import { FUZZ_ADDRESS, FUZZ_CLIENT_DUID, FUZZ_SERVER_DUID, fuzzContext6 } from '../fixtures/dhcp6-fuzz';

const IAID = 7;

function msg(
  type: number,
  o: { server?: Buffer; addr?: string; iaid?: number; rapid?: boolean; noIa?: boolean } = {},
): Dhcp6Message {
  const m = new Dhcp6Message(type, 0xabcdef).add(Opt6.CLIENTID, FUZZ_CLIENT_DUID);
  if (o.server) m.add(Opt6.SERVERID, o.server);
  if (o.rapid) m.add(Opt6.RAPID_COMMIT, Buffer.alloc(0));
  if (!o.noIa) {
    const inner = o.addr ? [{ code: Opt6.IAADDR, value: new IaAddrOption(o.addr, 0, 0).encode() }] : [];
    m.add(Opt6.IA_NA, new IaOption(Opt6.IA_NA, o.iaid ?? IAID, 0, 0, inner));
  }
  return Dhcp6Message.decode(m.encode()); // through the codec, as the server sees it
}

function ia(reply: Dhcp6Message): IaOption {
  return reply.get(Opt6.IA_NA, IaOption)!;
}

describe('codec', () => {
  it('round-trips a message and prints it', () => {
    const m = msg(MessageType.SOLICIT, { rapid: true });
    expect(Dhcp6Message.decode(m.encode()).encode()).toEqual(m.encode());
    expect(m.toString()).toContain('SOLICIT xid=0xabcdef');
    expect(m.toString()).toContain('client-id(1)=LL 02:42:0a:4d:00:05');
  });

  it('decodes what real clients sent, byte for byte back, and answers each', () => {
    const ctx = fuzzContext6();
    for (const [name, h] of Object.entries(REAL_PACKETS6)) {
      const m = Dhcp6Message.decode(Buffer.from(h, 'hex'));
      expect(m.encode().toString('hex'), name).toBe(h);
      expect(m.raw(Opt6.CLIENTID), name).toBeDefined();
    }
    const solicit = Dhcp6Message.decode(Buffer.from(REAL_PACKETS6.solicit1!, 'hex'));
    expect(handleMessage6(ctx, solicit)?.type).toBeGreaterThan(0);
  });

  it('rejects truncated, oversized, relay and malformed known options with typed errors', () => {
    const bad = (b: Buffer): string => {
      try {
        Dhcp6Message.decode(b);
      } catch (e) {
        expect(e).toBeInstanceOf(Dhcp6DecodeError);
        return (e as Dhcp6DecodeError).reason;
      }
      return 'decoded';
    };
    expect(bad(Buffer.from([1, 0, 0]))).toBe('truncated');
    expect(bad(Buffer.alloc(9001, 1))).toBe('oversized');
    expect(bad(Buffer.from([12, 0, 0, 0]))).toBe('relay');
    expect(bad(Buffer.from([1, 0, 0, 0, 0, 1, 0, 9, 1]))).toBe('truncated');
    expect(bad(Buffer.from([1, 0, 0, 0, 0, 1, 0, 1, 1]))).toBe('bad-option'); // a 1-byte DUID
    // a compression pointer in option 24 (RFC 8415 10: not allowed)
    expect(bad(Buffer.from([11, 0, 0, 0, 0, 24, 0, 6, 1, 0x61, 0, 0xc0, 0, 0]))).toBe('bad-option');
  });

  it('encodes the domain list uncompressed and DUID-LL from a MAC', () => {
    expect(new DomainListOption(['a.b', 'b']).encode().toString('hex')).toBe('01610162000162' + '00');
    expect(DuidOption.linkLayer(Buffer.from([2, 0, 0, 0, 0, 1])).bytes.toString('hex')).toBe('00030001020000000001');
  });

  it('names the field and value of a bad lease', () => {
    expect(() => resolveLease6({ addresses: ['fe80::5'], dns: [], search: [] })).toThrow(Dhcp6ConfigError);
    expect(() => resolveLease6({ addresses: ['fd00::5'], dns: ['x'], search: [] })).toThrow('invalid lease.dns[0] "x"');
    expect(() => resolveLease6({ addresses: ['fd00::5'], dns: [], search: ['-a'] })).toThrow('lease.search[0]');
  });
});

describe('server (RFC 8415 18.3)', () => {
  it('answers SOLICIT with ADVERTISE: our DUID, the address in the IA_NA, DNS, search, preference 255', () => {
    const ctx = fuzzContext6();
    const r = handleMessage6(ctx, msg(MessageType.SOLICIT))!;
    expect(r.type).toBe(MessageType.ADVERTISE);
    expect(r.xid).toBe(0xabcdef);
    expect(r.raw(Opt6.SERVERID)).toEqual(FUZZ_SERVER_DUID);
    expect(r.raw(Opt6.CLIENTID)).toEqual(FUZZ_CLIENT_DUID);
    expect(r.raw(Opt6.PREFERENCE)).toEqual(Buffer.from([255]));
    const a = ia(r);
    expect(a.iaid).toBe(IAID);
    expect(a.t1).toBe(1800);
    expect(a.t2).toBe(2880);
    expect(a.addresses.map((x) => [x.address, x.preferred, x.valid])).toEqual([[FUZZ_ADDRESS, 3600, 3600]]);
    expect(r.get(Opt6.DNS_SERVERS, Ip6ListOption)!.addresses).toEqual(['fd00:96::a']);
    expect(r.get(Opt6.DOMAIN_LIST, DomainListOption)!.names).toEqual(['svc.cluster.local', 'cluster.local']);
    expect(ctx.bindings.size).toBe(0); // an ADVERTISE commits nothing
  });

  it('commits a SOLICIT with rapid commit: a REPLY carrying rapid commit, and a binding', () => {
    const ctx = fuzzContext6();
    const r = handleMessage6(ctx, msg(MessageType.SOLICIT, { rapid: true }))!;
    expect(r.type).toBe(MessageType.REPLY);
    expect(r.has(Opt6.RAPID_COMMIT)).toBe(true);
    expect(ctx.bindings.size).toBe(1);
    ctx.rapidCommit = false;
    expect(handleMessage6(ctx, msg(MessageType.SOLICIT, { rapid: true }))!.type).toBe(MessageType.ADVERTISE);
  });

  it('ignores a SOLICIT that names a server, and a REQUEST/RENEW/RELEASE naming another server or none', () => {
    const ctx = fuzzContext6();
    const other = DuidOption.linkLayer(Buffer.from([2, 9, 9, 9, 9, 9])).bytes;
    expect(handleMessage6(ctx, msg(MessageType.SOLICIT, { server: FUZZ_SERVER_DUID }))).toBeUndefined();
    for (const t of [MessageType.REQUEST, MessageType.RENEW, MessageType.RELEASE, MessageType.DECLINE]) {
      expect(handleMessage6(ctx, msg(t, { server: other, addr: FUZZ_ADDRESS }))).toBeUndefined();
      expect(handleMessage6(ctx, msg(t, { addr: FUZZ_ADDRESS }))).toBeUndefined();
    }
    expect(ctx.counters.otherServer).toBe(4);
    expect(ctx.counters.invalid).toBe(5);
    expect(ctx.bindings.size).toBe(0);
  });

  it('REQUEST binds; RENEW extends the bound IA and answers NoBinding for an unknown IA', () => {
    const ctx = fuzzContext6();
    expect(ia(handleMessage6(ctx, msg(MessageType.REQUEST, { server: FUZZ_SERVER_DUID }))!).addresses).toHaveLength(1);
    const renew = handleMessage6(ctx, msg(MessageType.RENEW, { server: FUZZ_SERVER_DUID, addr: FUZZ_ADDRESS }))!;
    expect(ia(renew).addresses[0]!.valid).toBe(3600);
    const wrong = handleMessage6(
      ctx,
      msg(MessageType.RENEW, { server: FUZZ_SERVER_DUID, addr: FUZZ_ADDRESS, iaid: 99 }),
    )!;
    expect(wrong.type).toBe(MessageType.REPLY);
    expect(ia(wrong).iaid).toBe(99);
    expect(ia(wrong).addresses).toEqual([]);
    expect(ia(wrong).status?.status).toBe(Status.NO_BINDING);
  });

  it('REBIND without a binding rebinds our address, and returns a foreign one at lifetime 0', () => {
    const ctx = fuzzContext6();
    const r = handleMessage6(ctx, msg(MessageType.REBIND, { addr: FUZZ_ADDRESS }))!;
    expect(ia(r).addresses.map((a) => a.valid)).toEqual([3600]);
    expect(ctx.bindings.size).toBe(1);
    const f = handleMessage6(fuzzContext6(), msg(MessageType.REBIND, { addr: 'fd00:1::9' }))!;
    expect(ia(f).addresses.map((a) => [a.address, a.valid])).toEqual([
      [FUZZ_ADDRESS, 3600],
      ['fd00:1::9', 0],
    ]);
  });

  it('RELEASE drops the binding (Success), and a later RENEW gets NoBinding', () => {
    const ctx = fuzzContext6();
    handleMessage6(ctx, msg(MessageType.REQUEST, { server: FUZZ_SERVER_DUID }));
    const rel = handleMessage6(ctx, msg(MessageType.RELEASE, { server: FUZZ_SERVER_DUID, addr: FUZZ_ADDRESS }))!;
    expect(rel.get(Opt6.STATUS_CODE, StatusCodeOption)!.status).toBe(Status.SUCCESS);
    expect(rel.has(Opt6.IA_NA)).toBe(false);
    const renew = handleMessage6(ctx, msg(MessageType.RENEW, { server: FUZZ_SERVER_DUID, addr: FUZZ_ADDRESS }))!;
    expect(ia(renew).status?.status).toBe(Status.NO_BINDING);
  });

  it('CONFIRM: Success for our address, NotOnLink for another, silence without addresses', () => {
    const ctx = fuzzContext6();
    const st = (a?: string): number | undefined =>
      handleMessage6(ctx, msg(MessageType.CONFIRM, { addr: a }))?.get(Opt6.STATUS_CODE, StatusCodeOption)?.status;
    expect(st(FUZZ_ADDRESS)).toBe(Status.SUCCESS);
    expect(st('2001:db8::1')).toBe(Status.NOT_ON_LINK);
    expect(st()).toBeUndefined();
  });

  it('INFORMATION-REQUEST gets DNS and search, and is discarded when it carries an IA', () => {
    const ctx = fuzzContext6();
    const r = handleMessage6(ctx, msg(MessageType.INFORMATION_REQUEST, { noIa: true }))!;
    expect(r.has(Opt6.DNS_SERVERS) && r.has(Opt6.DOMAIN_LIST) && !r.has(Opt6.IA_NA)).toBe(true);
    expect(handleMessage6(ctx, msg(MessageType.INFORMATION_REQUEST))).toBeUndefined();
  });

  it('gives IA_PD NoPrefixAvail and a second IA_NA NoAddrsAvail', () => {
    const ctx = fuzzContext6();
    const m = msg(MessageType.SOLICIT)
      .add(Opt6.IA_NA, new IaOption(Opt6.IA_NA, 8, 0, 0))
      .add(Opt6.IA_PD, new IaOption(Opt6.IA_PD, 1, 0, 0));
    const r = handleMessage6(ctx, m)!;
    const [first, second] = r.all(Opt6.IA_NA, IaOption);
    expect(first!.addresses).toHaveLength(1);
    expect(second!.status?.status).toBe(Status.NO_ADDRS_AVAIL);
    expect(r.get(Opt6.IA_PD, IaOption)!.status?.status).toBe(Status.NO_PREFIX_AVAIL);
  });

  it('keeps at most a few bindings however many DUIDs a client invents', () => {
    const ctx = fuzzContext6();
    for (let i = 0; i < 100; i++) {
      const m = new Dhcp6Message(MessageType.SOLICIT, i)
        .add(Opt6.CLIENTID, DuidOption.linkLayer(Buffer.from([2, 0, 0, 0, 0, i])))
        .add(Opt6.RAPID_COMMIT, Buffer.alloc(0))
        .add(Opt6.IA_NA, new IaOption(Opt6.IA_NA, i, 0, 0));
      handleMessage6(ctx, m);
    }
    expect(ctx.bindings.size).toBe(8);
  });
});
