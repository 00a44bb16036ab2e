// The DHCP message codec (src/dhcp/packet.ts + options/wire.ts) against hand-annotated
// bytes: the BOOTP header of RFC 2131 2 field by field (flags' broadcast bit, giaddr), the
// magic cookie (RFC 2131 3), the option area (RFC 2132 2: PAD, END), option overload (RFC
// 2132 9.3, read order per RFC 2131 4.1), long options split and joined (RFC 3396), the
// 300-byte BOOTP minimum (RFC 1542 2.1), and every malformed input as a DecodeError with
// a reason. The typed option values themselves are in dhcp-options.test.ts.
import { describe, expect, it } from 'vitest';
import { MAX_PACKET_SIZE, MessageType, MIN_PACKET_SIZE, Opt } from '../../src/dhcp/constants';
import { DecodeError, type DecodeReason } from '../../src/dhcp/errors';
import {
  ClasslessRoutesOption,
  DomainSearchOption,
  DurationOption,
  IpListOption,
  IpOption,
  MessageTypeOption,
  OpaqueOption,
  OPTION_TYPES,
  ParameterListOption,
  TextOption,
  Uint16Option,
  Uint8Option,
  type OptionValue,
} from '../../src/dhcp/options';
import { DhcpPacket } from '../../src/dhcp/packet';
import { ascii, hex, REAL_PACKETS, zeros } from '../fixtures/dhcp-packets';

/** The 236-byte fixed header of a client message; only the fields a test cares about vary. */
function header(f: { op?: string; flags?: string; ciaddr?: string; giaddr?: string; sname?: string; file?: string }) {
  return `
    ${f.op ?? '01'}                 // op: 1 BOOTREQUEST
    01                              // htype: 1 Ethernet
    06                              // hlen: 6
    00                              // hops: 0
    a1b2c3d4                        // xid
    0000                            // secs
    ${f.flags ?? '0000'}            // flags
    ${f.ciaddr ?? '00000000'}       // ciaddr
    00000000                        // yiaddr
    00000000                        // siaddr
    ${f.giaddr ?? '00000000'}       // giaddr
    020000000001 ${zeros(10)}       // chaddr: 02:00:00:00:00:01, padded to 16
    ${f.sname ?? zeros(64)}         // sname (64)
    ${f.file ?? zeros(128)}         // file (128)
  `;
}
const COOKIE = '63825363'; // 99.130.83.99

/** Fills a field of n bytes: the given hex, then zeros. */
const field = (n: number, h: string): string => h + zeros(n - hex(h).length);

function decodeError(buf: Buffer): DecodeError {
  try {
    DhcpPacket.decode(buf);
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw new Error(`decode threw ${String(e)}, not a DecodeError`);
  }
  throw new Error('decode did not throw');
}

function expectDecodeError(buf: Buffer, reason: DecodeReason, option?: number): DecodeError {
  const e = decodeError(buf);
  expect(e.reason).toBe(reason);
  expect(e.code).toBe('EDHCPDECODE');
  expect(e.message).not.toBe('');
  if (option !== undefined) expect(e.option).toBe(option);
  return e;
}

describe('BOOTP header (RFC 2131 2)', () => {
  // A DISCOVER relayed by 10.1.0.1 with the broadcast bit set and a PRL.
  const DISCOVER = hex(`
    01                              // op: 1 BOOTREQUEST
    01                              // htype: 1 Ethernet
    06                              // hlen: 6
    02                              // hops: 2 (two relays so far)
    a1b2c3d4                        // xid
    0007                            // secs: 7
    8000                            // flags: B (leftmost bit) = broadcast, rest MBZ
    00000000                        // ciaddr: 0.0.0.0
    00000000                        // yiaddr: 0.0.0.0
    00000000                        // siaddr: 0.0.0.0
    0a010001                        // giaddr: 10.1.0.1 (relay)
    02420a4d0005 ${zeros(10)}       // chaddr: 02:42:0a:4d:00:05 + 10 bytes padding
    ${zeros(64)}                    // sname
    ${zeros(128)}                   // file
    ${COOKIE}                       // magic cookie 99.130.83.99
    350101                          // 53 message type, len 1: DISCOVER
    3703 01 03 79                   // 55 PRL, len 3: 1, 3, 121
    3902 05dc                       // 57 max message size, len 2: 1500
    ff                              // END
  `);

  it('decodes every header field from its offset', () => {
    const p = DhcpPacket.decode(DISCOVER);
    expect(p).toMatchObject({
      op: 1,
      htype: 1,
      hlen: 6,
      hops: 2,
      xid: 0xa1b2c3d4,
      secs: 7,
      flags: 0x8000,
      ciaddr: '0.0.0.0',
      yiaddr: '0.0.0.0',
      siaddr: '0.0.0.0',
      giaddr: '10.1.0.1',
    });
    expect(p.broadcast).toBe(true);
    expect(p.mac).toBe('02:42:0a:4d:00:05');
    expect(p.chaddr).toEqual(hex(`02420a4d0005 ${zeros(10)}`));
    expect(p.messageType).toBe(MessageType.DISCOVER);
    expect(p.get(Opt.PARAMETER_REQUEST_LIST, ParameterListOption)?.codes).toEqual([1, 3, 121]);
    expect(p.get(Opt.MAX_MESSAGE_SIZE, Uint16Option)?.value).toBe(1500);
    expect([...p.options.keys()]).toEqual([53, 55, 57]);
  });

  it('the broadcast flag is the leftmost bit of flags only', () => {
    const bit = (flags: string): boolean => DhcpPacket.decode(hex(header({ flags }) + COOKIE + 'ff')).broadcast;
    expect(bit('8000')).toBe(true);
    expect(bit('ffff')).toBe(true);
    expect(bit('0000')).toBe(false);
    expect(bit('7fff')).toBe(false); // the MBZ bits are not the broadcast bit
    expect(bit('0080')).toBe(false); // nor is the byte-swapped position
  });

  it('encodes a reply byte for byte, padded with zeros to 300 bytes', () => {
    const p = new DhcpPacket();
    p.op = 2;
    p.hops = 0;
    p.xid = 0xa1b2c3d4;
    p.secs = 0;
    p.flags = 0x8000;
    p.ciaddr = '0.0.0.0';
    p.yiaddr = '10.77.0.5';
    p.siaddr = '0.0.0.0';
    p.giaddr = '10.1.0.1';
    p.setMac('02:42:0a:4d:00:05');
    p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(MessageType.OFFER));
    p.set(Opt.SERVER_ID, new IpOption('169.254.254.2'));
    p.set(Opt.SUBNET_MASK, new IpOption('255.255.255.0'));
    const want = hex(`
      02                            // op: 2 BOOTREPLY
      01                            // htype: Ethernet
      06                            // hlen: 6 (from setMac)
      00                            // hops
      a1b2c3d4                      // xid
      0000                          // secs
      8000                          // flags: broadcast
      00000000                      // ciaddr
      0a4d0005                      // yiaddr: 10.77.0.5
      00000000                      // siaddr
      0a010001                      // giaddr: 10.1.0.1
      02420a4d0005 ${zeros(10)}     // chaddr
      ${zeros(64)}                  // sname
      ${zeros(128)}                 // file
      ${COOKIE}                     // magic cookie
      350102                        // 53: OFFER (always first)
      3604 a9fefe02                 // 54 server id: 169.254.254.2 (options go in the order set)
      0104 ffffff00                 // 1 subnet mask: 255.255.255.0
      ff                            // END
      ${zeros(300 - 240 - 3 - 6 - 6 - 1)} // pad to 300 (RFC 1542 2.1)
    `);
    const buf = p.encode();
    expect(buf.length).toBe(MIN_PACKET_SIZE);
    expect(buf.toString('hex')).toBe(want.toString('hex'));
    expect(p.encodedSize()).toBe(buf.length);
  });

  it('keeps giaddr, hops, ciaddr, siaddr, sname and file through encode and decode', () => {
    const p = new DhcpPacket();
    p.hops = 3;
    p.ciaddr = '10.77.0.5';
    p.siaddr = '10.0.0.9';
    p.giaddr = '192.0.2.1';
    p.sname.write('tftp', 'latin1');
    p.file.write('pxelinux.0', 'latin1');
    p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(MessageType.REQUEST));
    const buf = p.encode();
    expect(buf.subarray(3, 4)).toEqual(hex('03')); // hops at 3
    expect(buf.subarray(12, 16)).toEqual(hex('0a4d0005')); // ciaddr at 12
    expect(buf.subarray(20, 24)).toEqual(hex('0a000009')); // siaddr at 20
    expect(buf.subarray(24, 28)).toEqual(hex('c0000201')); // giaddr at 24
    expect(buf.subarray(44, 48)).toEqual(hex(ascii('tftp'))); // sname at 44
    expect(buf.subarray(108, 118)).toEqual(hex(ascii('pxelinux.0'))); // file at 108
    const q = DhcpPacket.decode(buf);
    expect(q).toMatchObject({ hops: 3, ciaddr: '10.77.0.5', siaddr: '10.0.0.9', giaddr: '192.0.2.1' });
    expect(q.sname).toEqual(p.sname);
    expect(q.file).toEqual(p.file);
  });

  it('decodes the real clients packets it was proven against', () => {
    for (const [name, h] of Object.entries(REAL_PACKETS)) {
      const p = DhcpPacket.decode(Buffer.from(h, 'hex'));
      expect(p.mac, name).toMatch(/^02:42:0a:4d:00:05$/);
      expect(p.messageType, name).toBeDefined();
    }
    const d = DhcpPacket.decode(Buffer.from(REAL_PACKETS.dhclientRequest!, 'hex'));
    expect(d.get(Opt.SERVER_ID, IpOption)?.address).toBe('169.254.254.2');
    expect(d.get(Opt.REQUESTED_IP, IpOption)?.address).toBe('10.77.0.5');
  });
});

describe('magic cookie (RFC 2131 3)', () => {
  it('is written at offset 236 as 99.130.83.99', () => {
    const buf = new DhcpPacket().encode();
    expect(buf.subarray(236, 240)).toEqual(hex('63 82 53 63'));
  });

  it('anything else is bad-cookie, including a plain BOOTP vendor area', () => {
    expectDecodeError(hex(header({}) + '63825364' + 'ff'), 'bad-cookie');
    expectDecodeError(hex(header({}) + '63538263' + 'ff'), 'bad-cookie'); // little-endian
    expectDecodeError(hex(header({}) + zeros(64)), 'bad-cookie'); // RFC 951 vendor area
  });
});

describe('option area: PAD, END (RFC 2132 2)', () => {
  it('skips PADs before, between and after options', () => {
    const p = DhcpPacket.decode(
      hex(`
        ${header({})} ${COOKIE}
        00 00                       // PAD PAD
        350103                      // 53: REQUEST
        00                          // PAD
        3204 0a4d0005               // 50 requested IP: 10.77.0.5
        00 00 00                    // PAD x3
        ff                          // END
      `),
    );
    expect([...p.options.keys()]).toEqual([53, 50]);
    expect(p.get(Opt.REQUESTED_IP, IpOption)?.address).toBe('10.77.0.5');
  });

  it('stops at END: what follows is padding, even when it looks like a broken option', () => {
    const p = DhcpPacket.decode(
      hex(`
        ${header({})} ${COOKIE}
        350101                      // 53: DISCOVER
        ff                          // END
        0c 7f 41                    // after END: "option 12, 127 bytes" with 1 byte; ignored
      `),
    );
    expect([...p.options.keys()]).toEqual([53]);
  });

  it('tolerates a missing END when the area simply ends', () => {
    const p = DhcpPacket.decode(hex(`${header({})} ${COOKIE} 350101 0c03 ${ascii('vm1')}`));
    expect(p.get(Opt.HOSTNAME, TextOption)?.text).toBe('vm1');
  });

  it('keeps a zero-length option (e.g. rapid commit 80) as an empty value', () => {
    const p = DhcpPacket.decode(hex(`${header({})} ${COOKIE} 350101 5000 ff`));
    expect(p.options.get(80)).toEqual(Buffer.alloc(0));
    expect(DhcpPacket.decode(p.encode()).options.get(80)).toEqual(Buffer.alloc(0));
  });

  it('never writes PAD or END as options, and ends the area with exactly one END', () => {
    const p = new DhcpPacket();
    p.options.set(Opt.PAD, hex('01'));
    p.options.set(Opt.END, hex('02'));
    p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(MessageType.ACK));
    const buf = p.encode();
    expect(buf.subarray(240, 244)).toEqual(hex('350105 ff'));
    expect(buf.subarray(244).every((b) => b === 0)).toBe(true);
  });

  it('writes 53 first, 82 (relay agent info, RFC 3046 2.1) last, the rest as set, mask before router', () => {
    const p = new DhcpPacket();
    p.options.set(82, hex('0103616263'));
    p.options.set(Opt.SERVER_ID, hex('a9fefe02'));
    p.options.set(Opt.CLASSLESS_ROUTES, hex('00 0a4d0001'));
    p.options.set(Opt.ROUTER, hex('0a4d0001'));
    p.options.set(Opt.SUBNET_MASK, hex('ffffff00'));
    p.options.set(Opt.MESSAGE_TYPE, hex('05'));
    const want = hex(`
        350105                      // 53 first
        3604 a9fefe02               // 54, as set
        7905 00 0a4d0001            // 121: 0.0.0.0/0 via 10.77.0.1
        0104 ffffff00               // 1, moved before 3 (RFC 2132 3.3)
        0304 0a4d0001               // 3
        5205 0103616263             // 82 last: circuit id "abc"
        ff                          // END
      `);
    expect(p.encode().subarray(240, 240 + want.length)).toEqual(want);
  });
});

describe('long options (RFC 3396)', () => {
  it('splits a value over 255 bytes into consecutive instances and joins them on decode', () => {
    const value = Buffer.alloc(300, 0x61);
    const p = new DhcpPacket();
    p.options.set(Opt.MESSAGE, value);
    const buf = p.encode();
    expect(buf.subarray(240, 242)).toEqual(hex('38 ff')); // 56, 255 bytes
    expect(buf.subarray(240 + 257, 240 + 259)).toEqual(hex('38 2d')); // 56, the other 45
    expect(buf[240 + 259 + 45]).toBe(0xff);
    expect(p.encodedSize()).toBe(buf.length);
    expect(DhcpPacket.decode(buf).options.get(Opt.MESSAGE)).toEqual(value);
  });

  it('an exactly 255-byte value is one instance', () => {
    const p = new DhcpPacket();
    p.options.set(Opt.MESSAGE, Buffer.alloc(255, 1));
    const buf = p.encode();
    expect(buf[241]).toBe(255);
    expect(buf[240 + 257]).toBe(0xff); // END right after
  });

  it('joins instances that are not adjacent', () => {
    const p = DhcpPacket.decode(hex(`${header({})} ${COOKIE} 0c02 ${ascii('vm')} 350101 0c02 ${ascii('-1')} ff`));
    expect(p.get(Opt.HOSTNAME, TextOption)?.text).toBe('vm-1');
  });
});

describe('option overload (RFC 2132 9.3)', () => {
  const FILE_OPTS = field(128, `0c03 ${ascii('vm1')} ff`); // file: 12 hostname "vm1", END
  const SNAME_OPTS = field(64, `0f07 ${ascii('example')} ff`); // sname: 15 domain "example", END

  it('1: options continue in file', () => {
    const p = DhcpPacket.decode(hex(`${header({ file: FILE_OPTS })} ${COOKIE} 350101 340101 ff`));
    expect(p.get(Opt.HOSTNAME, TextOption)?.text).toBe('vm1');
    expect(p.options.has(Opt.DOMAIN_NAME)).toBe(false);
    // consumed: the options moved into the map, file held no file name, 52 is gone, so
    // re-encoding (everything into the options field) decodes to the same options
    expect(p.options.has(Opt.OVERLOAD)).toBe(false);
    expect(p.file.every((b) => b === 0)).toBe(true);
    const again = DhcpPacket.decode(p.encode());
    expect(again.get(Opt.HOSTNAME, TextOption)?.text).toBe('vm1');
    expect([...again.options.keys()]).toEqual([...p.options.keys()]);
  });

  it('2: options continue in sname', () => {
    const p = DhcpPacket.decode(hex(`${header({ sname: SNAME_OPTS })} ${COOKIE} 350101 340102 ff`));
    expect(p.get(Opt.DOMAIN_NAME, TextOption)?.text).toBe('example');
  });

  it('3: both, joined in the order options, file, sname (RFC 2131 4.1, RFC 3396)', () => {
    const p = DhcpPacket.decode(
      hex(`
        ${header({
          file: field(128, `0c02 ${ascii('cd')} ff`), // file: 12 "cd"
          sname: field(64, `0c02 ${ascii('ef')} ff`), // sname: 12 "ef"
        })}
        ${COOKIE}
        350101                      // DISCOVER
        0c02 ${ascii('ab')}         // 12 "ab"
        340103                      // 52 overload: 3 = file and sname
        ff
      `),
    );
    expect(p.get(Opt.HOSTNAME, TextOption)?.text).toBe('abcdef');
  });

  it('without option 52, option-like bytes in file and sname are not options', () => {
    const p = DhcpPacket.decode(hex(`${header({ file: FILE_OPTS, sname: SNAME_OPTS })} ${COOKIE} 350101 ff`));
    expect([...p.options.keys()]).toEqual([53]);
  });

  it('an overload option inside file is ignored, the one in the options field stands', () => {
    const p = DhcpPacket.decode(
      hex(
        `${header({ file: field(128, `340103 0c03 ${ascii('vm1')} ff`), sname: SNAME_OPTS })} ${COOKIE} 350101 340101 ff`,
      ),
    );
    expect(p.get(Opt.HOSTNAME, TextOption)?.text).toBe('vm1');
    expect(p.options.has(Opt.DOMAIN_NAME)).toBe(false); // the inner 52 = 3 would have read sname
    expect(p.sname).toEqual(hex(SNAME_OPTS)); // not overloaded by the options field: left as it came
  });

  it('a bad overload value is bad-option 52', () => {
    for (const v of ['3401 00', '3401 04', '3402 0101', '3400']) {
      expectDecodeError(hex(`${header({})} ${COOKIE} 350101 ${v} ff`), 'bad-option', 52);
    }
  });

  it('a truncated option inside the overloaded file is a DecodeError', () => {
    expectDecodeError(
      hex(`${header({ file: field(128, '00').slice(0, -4) + '0c7f' })} ${COOKIE} 340101 ff`),
      'truncated',
    );
  });
});

describe('malformed input is a DecodeError with a reason, never another exception', () => {
  const GOOD = hex(`${header({})} ${COOKIE} 350101 ff`);

  it('truncated: shorter than header + cookie', () => {
    expectDecodeError(Buffer.alloc(0), 'truncated');
    expectDecodeError(GOOD.subarray(0, 239), 'truncated');
    expect(() => DhcpPacket.decode(GOOD.subarray(0, 240))).not.toThrow(); // no options at all is fine
  });

  it('truncated: an option without its length byte, or claiming more bytes than there are', () => {
    expectDecodeError(hex(`${header({})} ${COOKIE} 350101 0c`), 'truncated', 12);
    expectDecodeError(hex(`${header({})} ${COOKIE} 350101 0c05 ${ascii('vm1')}`), 'truncated', 12);
  });

  it('oversized: more than MAX_PACKET_SIZE bytes', () => {
    const big = Buffer.concat([GOOD, Buffer.alloc(MAX_PACKET_SIZE - GOOD.length)]);
    expect(() => DhcpPacket.decode(big)).not.toThrow();
    expectDecodeError(Buffer.concat([big, hex('00')]), 'oversized');
    expectDecodeError(Buffer.alloc(65507), 'oversized');
  });

  it('bad-field: op not 1 or 2, hlen over 16', () => {
    expectDecodeError(hex(`${header({ op: '00' })} ${COOKIE} ff`), 'bad-field');
    expectDecodeError(hex(`${header({ op: '03' })} ${COOKIE} ff`), 'bad-field');
    const b = Buffer.from(GOOD);
    b[2] = 17;
    expectDecodeError(b, 'bad-field');
    b[2] = 16;
    expect(DhcpPacket.decode(b).mac.split(':')).toHaveLength(16);
  });

  it('bad-option: a typed value that does not fit, named by its code', () => {
    const p = DhcpPacket.decode(hex(`${header({})} ${COOKIE} 350101 3203 0a4d00 ff`));
    const e = (() => {
      try {
        p.get(Opt.REQUESTED_IP, IpOption);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(DecodeError);
    expect(e).toMatchObject({ reason: 'bad-option', option: 50 });
    expect(p.getOr(Opt.REQUESTED_IP, IpOption, 'fallback')).toBe('fallback');
    expect(p.getOr(Opt.SERVER_ID, IpOption, 'absent')).toBe('absent');
  });

  it('a malformed message type reads as no message type', () => {
    expect(DhcpPacket.decode(hex(`${header({})} ${COOKIE} 35020101 ff`)).messageType).toBeUndefined();
    expect(DhcpPacket.decode(hex(`${header({})} ${COOKIE} 3500 ff`)).messageType).toBeUndefined();
  });

  it('every prefix and every single-byte corruption of real packets decodes or throws DecodeError', () => {
    for (const h of Object.values(REAL_PACKETS)) {
      const real = Buffer.from(h, 'hex');
      for (let n = 0; n <= real.length; n++) {
        try {
          DhcpPacket.decode(real.subarray(0, n)).toString();
        } catch (e) {
          expect(e, `prefix ${n}`).toBeInstanceOf(DecodeError);
        }
      }
      for (let i = 236; i < real.length; i++) {
        for (const v of [0x00, 0xff, 0x34, 0xc0]) {
          const b = Buffer.from(real);
          b[i] = v;
          try {
            DhcpPacket.decode(b).toString();
          } catch (e) {
            expect(e, `byte ${i} = ${v}`).toBeInstanceOf(DecodeError);
          }
        }
      }
    }
  });
});

describe('encode -> decode round trips', () => {
  /** A sample value for every typed option code. */
  const SAMPLES: Record<number, OptionValue> = {
    [Opt.SUBNET_MASK]: new IpOption('255.255.254.0'),
    [Opt.ROUTER]: new IpListOption(['10.0.0.1', '10.0.0.2']),
    [Opt.DNS]: new IpListOption(['10.96.0.10']),
    [Opt.HOSTNAME]: new TextOption('pod-a'),
    [Opt.DOMAIN_NAME]: new TextOption('cluster.local'),
    [Opt.INTERFACE_MTU]: new Uint16Option(1450),
    [Opt.BROADCAST_ADDRESS]: new IpOption('10.0.1.255'),
    [Opt.NTP_SERVERS]: new IpListOption(['10.0.0.1', '192.0.2.123']),
    [Opt.REQUESTED_IP]: new IpOption('10.0.0.5'),
    [Opt.LEASE_TIME]: new DurationOption(0xffffffff),
    [Opt.OVERLOAD]: new Uint8Option(3),
    [Opt.MESSAGE_TYPE]: new MessageTypeOption(MessageType.INFORM),
    [Opt.SERVER_ID]: new IpOption('169.254.254.2'),
    [Opt.PARAMETER_REQUEST_LIST]: new ParameterListOption([121, 1, 3, 6, 119]),
    [Opt.MESSAGE]: new TextOption('requested address is not yours'),
    [Opt.MAX_MESSAGE_SIZE]: new Uint16Option(1500),
    [Opt.RENEWAL_TIME]: new DurationOption(1800),
    [Opt.REBINDING_TIME]: new DurationOption(3150),
    [Opt.VENDOR_CLASS]: new TextOption('udhcp 1.35.0'),
    [Opt.CLIENT_ID]: new OpaqueOption(hex('01 02420a4d0005')),
    [Opt.TFTP_SERVER_NAME]: new TextOption('tftp.example.org'),
    [Opt.BOOTFILE_NAME]: new TextOption('pxelinux.0'),
    [Opt.RELAY_AGENT_INFO]: new OpaqueOption(hex('0104 00000001 0206 02420a4d0005')),
    [Opt.DOMAIN_SEARCH]: new DomainSearchOption(['svc.cluster.local', 'cluster.local', 'example.com']),
    [Opt.CLASSLESS_ROUTES]: new ClasslessRoutesOption([
      { dst: '169.254.254.2/32', gw: '0.0.0.0' },
      { dst: '10.128.0.0/9', gw: '10.0.0.1' },
      { dst: '0.0.0.0/0', gw: '10.0.0.1' },
    ]),
  };

  it('has a sample for every option type the codec knows', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(Object.keys(OPTION_TYPES).sort());
  });

  for (const [code, value] of Object.entries(SAMPLES)) {
    const [name, type] = OPTION_TYPES[Number(code)]!;
    it(`${name} (${code})`, () => {
      // overload is only meaningful with options in file/sname; keep it out of this packet's way
      const p = new DhcpPacket().set(Number(code), value);
      if (Number(code) === Opt.OVERLOAD) p.file[0] = 0xff; // file area: just END
      if (Number(code) === Opt.OVERLOAD) p.sname[0] = 0xff;
      const back = DhcpPacket.decode(p.encode()).get(Number(code), type);
      if (Number(code) === Opt.OVERLOAD) {
        expect(back).toBeUndefined(); // decode consumes 52: its options are in the map
        expect(value.encode()).toEqual(hex('03'));
        return;
      }
      expect(back).toEqual(value);
      expect(back!.encode()).toEqual(value.encode());
    });
  }

  it('all of them at once, split where long, in a packet that still decodes to the same map', () => {
    const p = new DhcpPacket();
    for (const [code, value] of Object.entries(SAMPLES)) if (Number(code) !== Opt.OVERLOAD) p.set(+code, value);
    p.set(Opt.DOMAIN_SEARCH, new DomainSearchOption(Array.from({ length: 30 }, (_, i) => `ns${i}.svc.cluster.local`)));
    const buf = p.encode();
    expect(buf.length).toBe(p.encodedSize());
    const q = DhcpPacket.decode(buf);
    expect(new Map([...q.options].sort(([a], [b]) => a - b))).toEqual(
      new Map([...p.options].sort(([a], [b]) => a - b)),
    );
    expect(q.get(Opt.DOMAIN_SEARCH, DomainSearchOption)?.names).toHaveLength(30);
  });

  it('an encoded message is never shorter than 300 bytes (RFC 1542 2.1), and encodedSize() is exact', () => {
    for (const n of [0, 1, 50, 55, 56, 57, 58, 59, 60, 254, 255, 256, 600]) {
      const p = new DhcpPacket();
      if (n > 0) p.options.set(Opt.MESSAGE, Buffer.alloc(n, 0x41));
      const buf = p.encode();
      expect(buf.length, `${n}-byte option`).toBeGreaterThanOrEqual(MIN_PACKET_SIZE);
      expect(buf.length).toBe(p.encodedSize());
      expect(DhcpPacket.decode(buf).options.get(Opt.MESSAGE)?.length ?? 0).toBe(n);
    }
  });
});
