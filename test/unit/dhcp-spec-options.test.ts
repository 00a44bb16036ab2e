// The options of a VM network spec's interface (issue 17: bootFileName 67, tftpServerName
// 66, ntpServers 42, privateOptions 224-254) on a static lease: checked with errors naming
// the field and value, encoded once, sent only to a client that asks for them (RFC 2131
// 4.3.1), dropped first when a reply would not fit (RFC 2132 9.10), never breaking one
// that fits; and the server's own 4-byte IPv4 options (54, 6, 42) always 4 bytes each.
import { describe, expect, it } from 'vitest';
import { MessageType, Opt } from '../../src/dhcp/constants';
import { DhcpConfigError } from '../../src/dhcp/errors';
import { resolveLease, type StaticLease } from '../../src/dhcp/lease';
import { addLeaseOptions, maxReplySize } from '../../src/dhcp/lease-options';
import { IpListOption, ParameterListOption, TextOption, Uint16Option } from '../../src/dhcp/options';
import { DhcpPacket } from '../../src/dhcp/packet';
import { replyOf } from '../../src/dhcp/reply';

const BASE: StaticLease = {
  mac: '02:42:0a:4d:00:05',
  ip: '10.77.0.5',
  prefixLen: 24,
  routers: ['10.77.0.1'],
  classlessRoutes: [],
  dns: ['10.96.0.10'],
  search: [],
};
const SPEC: StaticLease = {
  ...BASE,
  bootFileName: 'pxelinux.0',
  tftpServerName: 'tftp.example.org',
  ntpServers: ['10.77.0.1', '192.0.2.123'],
  privateOptions: [
    { option: 224, value: 'hello world' },
    { option: 254, value: 'zürich' },
  ],
};

function request(prl?: number[], maxSize?: number): DhcpPacket {
  const p = new DhcpPacket().setMac(BASE.mac);
  p.op = 1;
  p.options.set(Opt.MESSAGE_TYPE, Buffer.from([MessageType.REQUEST]));
  if (prl) p.set(Opt.PARAMETER_REQUEST_LIST, new ParameterListOption(prl));
  if (maxSize !== undefined) p.set(Opt.MAX_MESSAGE_SIZE, new Uint16Option(maxSize));
  return DhcpPacket.decode(p.encode());
}

function ack(lease: StaticLease, req: DhcpPacket): { reply: DhcpPacket; dropped: readonly number[] } {
  const reply = replyOf(req, MessageType.ACK);
  reply.options.set(Opt.SERVER_ID, Buffer.from([169, 254, 254, 2]));
  const dropped = addLeaseOptions(reply, req, resolveLease(lease), true);
  return { reply: DhcpPacket.decode(reply.encode()), dropped };
}

const cstring = (b: Buffer) => b.toString('latin1', 0, b.indexOf(0));

describe("a VM network spec's DHCP options", () => {
  it('sends 42, 66, 67 and the private options a client asks for, in its order, and the file/sname header fields', () => {
    const { reply } = ack(SPEC, request([1, 3, 254, 67, 66, 42, 224]));
    expect(reply.getOr(Opt.NTP_SERVERS, IpListOption, undefined)?.addresses).toEqual(['10.77.0.1', '192.0.2.123']);
    expect(reply.getOr(Opt.TFTP_SERVER_NAME, TextOption, undefined)?.text).toBe('tftp.example.org');
    expect(reply.getOr(Opt.BOOTFILE_NAME, TextOption, undefined)?.text).toBe('pxelinux.0');
    expect(reply.options.get(224)?.toString()).toBe('hello world');
    expect(reply.options.get(254)?.toString('utf8')).toBe('zürich');
    const codes = [...reply.options.keys()];
    expect(codes.filter((c) => [254, 67, 66, 42, 224].includes(c))).toEqual([254, 67, 66, 42, 224]);
    expect(cstring(reply.file)).toBe('pxelinux.0');
    expect(cstring(reply.sname)).toBe('tftp.example.org');
  });

  it('leaves out what the client did not ask for (the header fields stay: they cost no bytes)', () => {
    const { reply } = ack(SPEC, request([1, 3, 6]));
    for (const c of [42, 66, 67, 224, 254]) expect(reply.options.has(c), String(c)).toBe(false);
    expect(cstring(reply.file)).toBe('pxelinux.0');
    // a lease without them: nothing new in any reply, asked or not
    const plain = ack(BASE, request([42, 66, 67, 224])).reply;
    for (const c of [42, 66, 67, 224]) expect(plain.options.has(c)).toBe(false);
    expect(plain.file.every((b) => b === 0) && plain.sname.every((b) => b === 0)).toBe(true);
  });

  it("without a parameter request list every option goes, the spec's dropped first when the reply would not fit", () => {
    const big = { ...SPEC, privateOptions: [224, 225, 226].map((option) => ({ option, value: 'x'.repeat(200) })) };
    const req = request(undefined);
    const { reply, dropped } = ack(big, req);
    expect(reply.encode().length).toBeLessThanOrEqual(maxReplySize(req));
    expect(dropped.slice(0, 2)).toEqual([226, 225]);
    for (const c of [Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS, Opt.LEASE_TIME, Opt.SERVER_ID])
      expect(reply.options.has(c)).toBe(true);
    // a client that takes larger messages gets them all
    const roomy = ack(big, request(undefined, 1500));
    expect(roomy.dropped).toEqual([]);
    expect([224, 225, 226].every((c) => roomy.reply.options.get(c)?.length === 200)).toBe(true);
  });

  it('a long boot file name goes as option 67 only when it does not fit the header field', () => {
    const long = `/boot/${'a'.repeat(150)}.efi`;
    const { reply } = ack({ ...BASE, bootFileName: long }, request([67], 1500));
    expect(reply.getOr(Opt.BOOTFILE_NAME, TextOption, undefined)?.text).toBe(long);
    expect(reply.file.every((b) => b === 0)).toBe(true);
  });

  it('refuses bad values naming the field and the value', () => {
    const bad: [Partial<StaticLease>, string, RegExp][] = [
      [{ bootFileName: '' }, 'lease.bootFileName', /printable ASCII/],
      [{ bootFileName: 'a\u0000b' }, 'lease.bootFileName', /printable ASCII/],
      [{ tftpServerName: 'x'.repeat(256) }, 'lease.tftpServerName', /1-255/],
      [{ tftpServerName: 'tftp\nhost' }, 'lease.tftpServerName', /printable/],
      [{ ntpServers: ['fd00::1'] }, 'lease.ntpServers[0]', /not an IPv4 address/],
      [{ ntpServers: '10.0.0.1' as unknown as string[] }, 'lease.ntpServers', /list/],
      [{ ntpServers: Array(64).fill('10.0.0.1') }, 'lease.ntpServers', /at most 63/],
      [{ privateOptions: [{ option: 223, value: 'x' }] }, 'lease.privateOptions[0].option', /224-254/],
      [{ privateOptions: [{ option: 255, value: 'x' }] }, 'lease.privateOptions[0].option', /224-254/],
      [{ privateOptions: [{ option: 224.5, value: 'x' }] }, 'lease.privateOptions[0].option', /224-254/],
      [
        {
          privateOptions: [
            { option: 230, value: 'a' },
            { option: 230, value: 'b' },
          ],
        },
        'lease.privateOptions[1].option',
        /twice/,
      ],
      [{ privateOptions: [{ option: 230, value: '' }] }, 'lease.privateOptions[0].value', /1-255 bytes/],
      [{ privateOptions: [{ option: 230, value: 'é'.repeat(128) }] }, 'lease.privateOptions[0].value', /1-255 bytes/],
      [{ privateOptions: [{ option: 230, value: 7 as unknown as string }] }, 'lease.privateOptions[0].value', /string/],
      [{ dns: ['fd00::53'] }, 'lease.dns[0]', /not an IPv4 address/],
    ];
    for (const [patch, field, message] of bad) {
      let err: unknown;
      try {
        resolveLease({ ...BASE, ...patch } as StaticLease);
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(DhcpConfigError);
      expect((err as DhcpConfigError).field, JSON.stringify(patch)).toBe(field);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('54, 6 and 42 are 4-byte IPv4 values: the encoder cannot make anything else', () => {
    const { reply } = ack({ ...SPEC, dns: ['10.96.0.10', '10.96.0.11', '10.96.0.12'] }, request([6, 42, 54]));
    const wire = reply.encode();
    const lengths = new Map<number, number>();
    for (let i = 240; wire[i] !== 255; i += wire[i] === 0 ? 1 : 2 + wire[i + 1]!) {
      if (wire[i]) lengths.set(wire[i]!, wire[i + 1]!);
    }
    expect(lengths.get(54)).toBe(4);
    expect(lengths.get(6)).toBe(12);
    expect(lengths.get(42)).toBe(8);
    // what a lease holds is checked before anything is encoded: no text or IPv6 slips into 6 or 42
    for (const v of ['10.0.0.256', '10.0.0', ' 10.0.0.1', '::ffff:10.0.0.1', '010.0.0.1']) {
      expect(() => resolveLease({ ...BASE, dns: [v] }), v).toThrow(DhcpConfigError);
      expect(() => resolveLease({ ...BASE, ntpServers: [v] }), v).toThrow(DhcpConfigError);
    }
  });
});
