// The addon's learned answers (src/dhcp/fast-answers.ts, native/udp4.cc sock4Answer): a
// request seen before, but for its xid and secs, is answered without the JS path, and
// what it did is accounted as if the JS path had answered it; whatever makes a learned
// answer stale sends the next request through the JS path again. A DhcpServer on lo (no
// root), a dgram client on 127.0.0.1; the JS path is seen by DhcpPacket.decode's calls.
import * as dgram from 'node:dgram';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MessageType, Opt } from '../../src/dhcp/constants';
import { IpOption, MessageTypeOption, ParameterListOption, TextOption } from '../../src/dhcp/options';
import { DhcpPacket } from '../../src/dhcp/packet';
import { DhcpServer, type DhcpServerStats, type StaticLease } from '../../src/dhcp/server';
import { SOCK4_ANSWER_SLOTS, sock4Answer, udpSocketBoundToDevice, closeFd } from '../../src/native';
import type { Logger } from '../../src/util/log';

const MAC = '02:00:5e:00:53:41';
const LOOPBACK = '127.0.0.1';
const lease = (o: Partial<StaticLease> = {}): StaticLease => ({
  mac: MAC,
  ip: LOOPBACK,
  prefixLen: 8,
  routers: ['127.0.0.254'],
  classlessRoutes: [],
  dns: [],
  search: [],
  ...o,
});

interface Reply {
  xid: number;
  type: number;
  yiaddr: string;
  bytes: Buffer;
}

/** The reply's xid, type (option 53) and yiaddr, read without the codec (whose calls the tests count). */
function readReply(b: Buffer): Reply {
  let type = 0;
  for (let i = 240; i < b.length && b[i] !== 255;) {
    if (b[i] === 0) {
      i++;
      continue;
    }
    if (b[i] === Opt.MESSAGE_TYPE) type = b[i + 2]!;
    i += 2 + b[i + 1]!;
  }
  return { xid: b.readUInt32BE(4), type, yiaddr: [...b.subarray(16, 20)].join('.'), bytes: Buffer.from(b) };
}

function request(
  type: number,
  xid: number,
  o: { secs?: number; host?: string; renewing?: boolean; pad?: number } = {},
): Buffer {
  const p = new DhcpPacket().setMac(MAC);
  p.xid = xid;
  p.secs = o.secs ?? 0;
  p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(type));
  p.set(Opt.PARAMETER_REQUEST_LIST, new ParameterListOption([1, 3, 6, 15]));
  if (o.host) p.set(Opt.HOSTNAME, new TextOption(o.host));
  if (o.renewing) p.ciaddr = LOOPBACK;
  else if (type === MessageType.REQUEST) {
    p.set(Opt.REQUESTED_IP, new IpOption(LOOPBACK));
    p.set(Opt.SERVER_ID, new IpOption(LOOPBACK));
  }
  const wire = p.encode();
  return o.pad ? Buffer.concat([wire, Buffer.alloc(o.pad)]) : wire; // padding after the end option
}

class Client {
  private waiting = new Map<number, (r: Reply) => void>();
  private constructor(readonly sock: dgram.Socket) {
    sock.on('message', (msg) => {
      const r = readReply(msg);
      this.waiting.get(r.xid)?.(r);
      this.waiting.delete(r.xid);
    });
  }
  static async open(): Promise<Client> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, () => r())); // any address: a lease may be another 127.x
    return new Client(sock);
  }
  port(): number {
    return this.sock.address().port;
  }
  /** Sends msg to the server; the reply with msg's xid, or undefined after ms. */
  ask(server: DhcpServer, msg: Buffer, ms = 2000): Promise<Reply | undefined> {
    const xid = msg.readUInt32BE(4);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting.delete(xid);
        resolve(undefined);
      }, ms);
      this.waiting.set(xid, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      this.sock.send(msg, server.localPort(), LOOPBACK);
    });
  }
  close(): Promise<void> {
    return new Promise((r) => this.sock.close(() => r()));
  }
}

function recordingLogger(lines: { level: string; msg: string }[]): Logger {
  const at =
    (level: string) =>
    (msg: string): void => {
      lines.push({ level, msg });
    };
  const l: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => l };
  return l;
}

let client: Client;
let servers: DhcpServer[];
let decodes: ReturnType<typeof vi.spyOn>;

beforeEach(async () => {
  client = await Client.open();
  servers = [];
  decodes = vi.spyOn(DhcpPacket, 'decode');
});

afterEach(async () => {
  decodes.mockRestore();
  await Promise.all(servers.map((s) => s.close()));
  await client.close();
});

async function serve(o: { leases?: StaticLease[]; fast?: boolean; logger?: Logger } = {}): Promise<DhcpServer> {
  const s = await DhcpServer.start({
    ifname: 'lo',
    serverId: LOOPBACK,
    port: 0,
    clientPort: client.port(),
    leases: o.leases ?? [lease()],
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.fast === false ? { fastAnswers: false } : {}),
  });
  servers.push(s);
  return s;
}

/** A DISCOVER and a REQUEST, n times, each with a new xid; the replies' types. */
async function exchanges(s: DhcpServer, n: number, xid0: number, o: { secs?: number } = {}): Promise<number[]> {
  const types: number[] = [];
  for (let i = 0; i < n; i++) {
    for (const t of [MessageType.DISCOVER, MessageType.REQUEST]) {
      const r = await client.ask(s, request(t, xid0 + 2 * i + (t === MessageType.REQUEST ? 1 : 0), o));
      types.push(r?.type ?? 0);
    }
  }
  return types;
}

const withoutTimes = (st: DhcpServerStats): unknown => ({
  ...st,
  leases: st.leases.map((l) => ({ ...l, boundAt: undefined, expiresAt: undefined })),
});

describe('learned answers', () => {
  it('answer a request seen before (new xid and secs) without the JS path, with its own xid, and count it as the JS path does', async () => {
    const fast = await serve();
    const types = await exchanges(fast, 20, 0x1000, { secs: 3 });
    expect(types).toEqual(Array.from({ length: 20 }, () => [MessageType.OFFER, MessageType.ACK]).flat());
    expect(decodes).toHaveBeenCalledTimes(2); // the first DISCOVER and the first REQUEST
    const r = await client.ask(fast, request(MessageType.DISCOVER, 0xabcdef01, { secs: 9 }));
    expect(r).toMatchObject({ xid: 0xabcdef01, type: MessageType.OFFER, yiaddr: LOOPBACK });
    expect(decodes).toHaveBeenCalledTimes(2);

    const slow = await serve({ fast: false });
    await exchanges(slow, 20, 0x2000, { secs: 3 });
    const s = await client.ask(slow, request(MessageType.DISCOVER, 0xabcdef01, { secs: 9 }));
    expect(decodes).toHaveBeenCalledTimes(2 + 41);
    expect(r!.bytes.equals(s!.bytes)).toBe(true); // the same bytes as the JS path's, xid and all
    for (const [type, o] of [
      [MessageType.REQUEST, {}],
      [MessageType.REQUEST, { renewing: true }],
      [MessageType.INFORM, { renewing: true }],
    ] as const) {
      for (const server of [fast, fast, slow, slow]) await client.ask(server, request(type, 0x2f00, o)); // learned, then replayed
      const n = decodes.mock.calls.length;
      const a = await client.ask(fast, request(type, 0x2f01, o));
      const b = await client.ask(slow, request(type, 0x2f01, o));
      expect(decodes.mock.calls.length).toBe(n + 1); // the slow server's
      expect(a!.bytes.equals(b!.bytes)).toBe(true);
    }
    const f = fast.stats();
    expect(f.received).toBe(41 + 9);
    expect(f.offer).toBe(21);
    expect(f.ack).toBe(20 + 9);
    expect(f.inform).toBe(3);
    expect(withoutTimes(f)).toEqual(withoutTimes(slow.stats()));
  });

  it("renew the binding at their last use, as the JS path's ACK does", async () => {
    const s = await serve({ leases: [lease({ leaseTime: 3600 })] });
    await exchanges(s, 1, 0x3000);
    const first = Date.parse(s.stats().leases[0]!.boundAt!);
    await new Promise((r) => setTimeout(r, 30));
    const t0 = Date.now();
    expect((await client.ask(s, request(MessageType.REQUEST, 0x3100)))?.type).toBe(MessageType.ACK);
    expect(decodes).toHaveBeenCalledTimes(2);
    const l = s.stats().leases[0]!;
    expect(l.state).toBe('bound');
    expect(Date.parse(l.boundAt!)).toBeGreaterThanOrEqual(t0);
    expect(Date.parse(l.boundAt!)).toBeGreaterThan(first);
    expect(Date.parse(l.expiresAt!)).toBe(Date.parse(l.boundAt!) + 3600 * 1000);
  });

  it('take nothing that differs beyond xid and secs: another option, ciaddr, trailing bytes', async () => {
    const s = await serve();
    await exchanges(s, 1, 0x4000);
    const calls = (): number => decodes.mock.calls.length;
    for (const [i, o] of [{ host: 'vm' }, { renewing: true }, { pad: 1 }].entries()) {
      const before = calls();
      expect((await client.ask(s, request(MessageType.DISCOVER, 0x4100 + i, o)))?.type).toBe(MessageType.OFFER);
      expect(calls()).toBe(before + 1);
    }
  });

  it('are forgotten by a RELEASE, a DECLINE, another server chosen and new leases: the next request takes the JS path', async () => {
    const lines: { level: string; msg: string }[] = [];
    const s = await serve({ logger: recordingLogger(lines) });
    const bound = (): number => lines.filter((l) => l.msg === 'lease bound' && l.level === 'info').length;
    await exchanges(s, 2, 0x5000);
    expect(bound()).toBe(1);

    const release = request(MessageType.RELEASE, 0x5100, { renewing: true });
    client.sock.send(release, s.localPort(), LOOPBACK);
    await vi.waitFor(() => expect(s.stats().release).toBe(1));
    let n = decodes.mock.calls.length;
    expect((await client.ask(s, request(MessageType.REQUEST, 0x5101)))?.type).toBe(MessageType.ACK);
    expect(decodes.mock.calls.length).toBe(n + 1);
    expect(bound()).toBe(2); // bound again after the release: said again

    const decline = request(MessageType.DECLINE, 0x5200);
    client.sock.send(decline, s.localPort(), LOOPBACK);
    await vi.waitFor(() => expect(s.stats().decline).toBe(1));
    n = decodes.mock.calls.length;
    expect((await client.ask(s, request(MessageType.REQUEST, 0x5201)))?.type).toBe(MessageType.ACK);
    expect(decodes.mock.calls.length).toBe(n + 1);
    expect(bound()).toBe(3);

    // our offer withdrawn (a REQUEST naming another server) takes the learned OFFER with it
    client.sock.send(request(MessageType.RELEASE, 0x5300, { renewing: true }), s.localPort(), LOOPBACK);
    await vi.waitFor(() => expect(s.stats().release).toBe(2));
    await client.ask(s, request(MessageType.DISCOVER, 0x5301));
    n = decodes.mock.calls.length;
    await client.ask(s, request(MessageType.DISCOVER, 0x5302));
    expect(decodes.mock.calls.length).toBe(n); // offered: learned
    const other = new DhcpPacket().setMac(MAC);
    other.xid = 0x5303;
    other.set(Opt.MESSAGE_TYPE, new MessageTypeOption(MessageType.REQUEST));
    other.set(Opt.SERVER_ID, new IpOption('127.0.0.9'));
    other.set(Opt.REQUESTED_IP, new IpOption(LOOPBACK));
    client.sock.send(other.encode(), s.localPort(), LOOPBACK);
    await vi.waitFor(() => expect(s.stats().otherServer).toBe(1));
    expect(s.stats().leases[0]!.state).toBe('none');
    n = decodes.mock.calls.length;
    await client.ask(s, request(MessageType.DISCOVER, 0x5304));
    expect(decodes.mock.calls.length).toBe(n + 1);

    s.setLeases([lease({ ip: '127.0.0.2' })]);
    n = decodes.mock.calls.length;
    expect(await client.ask(s, request(MessageType.DISCOVER, 0x5500))).toMatchObject({
      xid: 0x5500,
      type: MessageType.OFFER,
      yiaddr: '127.0.0.2',
    });
    expect(decodes.mock.calls.length).toBe(n + 1);
  });

  it("lapse with an ACK's lease: a REQUEST after the expiry takes the JS path and is logged as a new binding", async () => {
    const lines: { level: string; msg: string }[] = [];
    const s = await serve({ leases: [lease({ leaseTime: 3 })], logger: recordingLogger(lines) }); // the shortest with T1 < T2
    await exchanges(s, 2, 0x6000);
    const n = decodes.mock.calls.length;
    await new Promise((r) => setTimeout(r, 3100));
    expect((await client.ask(s, request(MessageType.REQUEST, 0x6100)))?.type).toBe(MessageType.ACK);
    expect(decodes.mock.calls.length).toBe(n + 1);
    expect(lines.filter((l) => l.msg === 'lease bound' && l.level === 'info')).toHaveLength(2);
  });

  it('are at most SOCK4_ANSWER_SLOTS, the oldest replaced; requests over 1 KiB are not learned', async () => {
    const s = await serve();
    const shapes = SOCK4_ANSWER_SLOTS + 1;
    let xid = 0x7000;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < shapes; i++) {
        const before = decodes.mock.calls.length;
        await client.ask(s, request(MessageType.DISCOVER, xid++, { host: `h${i}` }));
        expect(decodes.mock.calls.length).toBe(before + 1); // one more shape than slots, in turn: every one misses
      }
    }
    for (let i = 0; i < 2; i++) {
      const before = decodes.mock.calls.length;
      expect((await client.ask(s, request(MessageType.DISCOVER, xid++, { pad: 1100 })))?.type).toBe(MessageType.OFFER);
      expect(decodes.mock.calls.length).toBe(before + 1);
    }
    expect(s.stats().offer).toBe(3 * shapes + 2);
  });

  it('hold in a batch read in one wake-up: learned, replayed, forgotten by a RELEASE between, and counted alike', async () => {
    const fast = await serve();
    const slow = await serve({ fast: false });
    const batch = [
      request(MessageType.DISCOVER, 0x9000),
      request(MessageType.DISCOVER, 0x9001),
      request(MessageType.REQUEST, 0x9002),
      request(MessageType.REQUEST, 0x9003),
      request(MessageType.RELEASE, 0x9004, { renewing: true }),
      request(MessageType.REQUEST, 0x9005),
      request(MessageType.DISCOVER, 0x9006),
      request(MessageType.REQUEST, 0x9007),
    ];
    for (const server of [fast, slow]) {
      const got = new Set<number>();
      const done = new Promise<void>((resolve) => {
        const on = (msg: Buffer): void => {
          got.add(msg.readUInt32BE(4));
          if (got.size === batch.length - 1) {
            client.sock.off('message', on);
            resolve();
          }
        };
        client.sock.on('message', on);
      });
      for (const m of batch) client.sock.send(m, server.localPort(), LOOPBACK); // queued before the server's next wake-up
      await done;
    }
    expect(withoutTimes(fast.stats())).toEqual(withoutTimes(slow.stats()));
    expect(fast.stats().leases[0]!.state).toBe('bound');
  });

  it('are counted by stats() after close, and a closed server answers nothing', async () => {
    const s = await serve();
    await exchanges(s, 3, 0x8000);
    await s.close();
    expect(s.stats().received).toBe(6);
    expect(await client.ask(s, request(MessageType.DISCOVER, 0x8100), 100)).toBeUndefined();
  });
});

describe('sock4Answer', () => {
  it('names the argument that is wrong', () => {
    const fd = udpSocketBoundToDevice('lo', 0);
    try {
      const a = {
        slot: 0,
        request: Buffer.alloc(300),
        reply: Buffer.alloc(300),
        to: { address: LOOPBACK, port: 68 },
        vary: [4, 10] as [number, number],
        copy: [4, 8] as [number, number],
        ttlMs: 0,
        usedAt: Date.now(),
      };
      expect(() => sock4Answer(fd, { ...a, slot: SOCK4_ANSWER_SLOTS })).toThrow(/slot/);
      expect(() => sock4Answer(fd, { ...a, request: Buffer.alloc(0) })).toThrow(/request/);
      expect(() => sock4Answer(fd, { ...a, reply: Buffer.alloc(5000) })).toThrow(/reply/);
      expect(() => sock4Answer(fd, { ...a, to: { address: 'x', port: 68 } })).toThrow(/dst/);
      expect(() => sock4Answer(fd, { ...a, vary: [4, 301] })).toThrow(/varyTo/);
      expect(() => sock4Answer(fd, { ...a, vary: [10, 4] })).toThrow(/varyTo/);
      expect(() => sock4Answer(fd, { ...a, copy: [4, 400] })).toThrow(/copyTo/);
      expect(() => sock4Answer(fd, { ...a, ttlMs: -1 })).toThrow(/ttlMs/);
      expect(() => sock4Answer(fd, { ...a, ttlMs: NaN })).toThrow(/ttlMs/);
      expect(() => sock4Answer(fd, { ...a, usedAt: -1 })).toThrow(/usedAt/);
    } finally {
      closeFd(fd);
    }
  });
});
