// The typed option values of src/dhcp/options against hand-annotated bytes, both ways:
// RFC 3442 classless static routes (121) with the RFC's destination descriptor examples,
// RFC 3397 domain search (119) with RFC 1035 4.1.4 compression (the RFC's own example,
// pointers followed on decode, loops rejected, one terminator per name on encode), and the
// RFC 2132 scalar types (addresses, lists, text, integers, durations, message type, PRL).
import { describe, expect, it } from 'vitest';
import { Opt } from '../../src/dhcp/constants';
import { DecodeError, type DecodeReason } from '../../src/dhcp/errors';
import {
  ClasslessRoutesOption,
  DomainSearchOption,
  DurationOption,
  IpListOption,
  IpOption,
  MessageTypeOption,
  OpaqueOption,
  ParameterListOption,
  TextOption,
  Uint16Option,
  Uint8Option,
  type OptionType,
  type OptionValue,
} from '../../src/dhcp/options';
import { DhcpPacket } from '../../src/dhcp/packet';
import { ascii, hex } from '../fixtures/dhcp-packets';

function rejects<T extends OptionValue>(type: OptionType<T>, bytes: Buffer, reason: DecodeReason, option?: number) {
  let err: unknown;
  try {
    type.decode(bytes);
  } catch (e) {
    err = e;
  }
  expect(err, `decoding ${bytes.toString('hex')}`).toBeInstanceOf(DecodeError);
  expect((err as DecodeError).reason).toBe(reason);
  if (option !== undefined) expect((err as DecodeError).option).toBe(option);
  return err as DecodeError;
}

describe('option 121, classless static routes (RFC 3442)', () => {
  const via = (dst: string, gw = '10.0.0.1') => ({ dst, gw });

  // RFC 3442 "Classless Route Option Format": width, then the significant octets of the
  // subnet number (ceil(width / 8)), then the 4-byte router. The examples of its table of
  // destination descriptors, each followed by router 10.0.0.1 (0a000001).
  const RFC_EXAMPLES: [string, string][] = [
    ['0.0.0.0/0', '00'], //                      width 0, no octets: the default route
    ['10.0.0.0/8', '08 0a'], //                  width 8, one octet
    ['10.0.0.0/24', '18 0a 00 00'], //           width 24, three octets, zeros kept
    ['10.17.0.0/16', '10 0a 11'], //             width 16, two octets
    ['10.27.129.0/24', '18 0a 1b 81'], //        width 24, three octets
    ['10.229.0.128/25', '19 0a e5 00 80'], //    width 25, four octets
    ['10.198.122.47/32', '20 0a c6 7a 2f'], //   width 32, a host route
  ];

  for (const [dst, descriptor] of RFC_EXAMPLES) {
    it(`${dst} <-> ${descriptor} + router`, () => {
      const bytes = hex(`${descriptor} 0a000001`);
      expect(new ClasslessRoutesOption([via(dst)]).encode()).toEqual(bytes);
      expect(ClasslessRoutesOption.decode(bytes).routes).toEqual([via(dst)]);
    });
  }

  it('widths between octet boundaries take the octets that hold them', () => {
    const cases: [string, string][] = [
      ['128.0.0.0/1', '01 80'], //                1 bit -> 1 octet
      ['10.128.0.0/9', '09 0a 80'], //            9 bits -> 2 octets
      ['172.16.0.0/12', '0c ac 10'], //           12 bits -> 2 octets
      ['10.1.128.0/17', '11 0a 01 80'], //        17 bits -> 3 octets
      ['10.0.0.2/31', '1f 0a 00 00 02'], //       31 bits -> 4 octets
    ];
    for (const [dst, d] of cases) {
      expect(new ClasslessRoutesOption([via(dst)]).encode(), dst).toEqual(hex(`${d} 0a000001`));
      expect(ClasslessRoutesOption.decode(hex(`${d} 0a000001`)).routes, d).toEqual([via(dst)]);
    }
  });

  it("tapwire's shape: an on-link /32 to the server id, a route via the gateway, the default route last", () => {
    const routes = [
      { dst: '169.254.254.2/32', gw: '0.0.0.0' },
      { dst: '10.96.0.0/12', gw: '10.77.0.1' },
      { dst: '0.0.0.0/0', gw: '10.77.0.1' },
    ];
    const bytes = hex(`
      20 a9fefe02   00000000        // 169.254.254.2/32, router 0.0.0.0 = on-link
      0c 0a60       0a4d0001        // 10.96.0.0/12 via 10.77.0.1
      00            0a4d0001        // 0.0.0.0/0 via 10.77.0.1
    `);
    expect(new ClasslessRoutesOption(routes).encode()).toEqual(bytes);
    expect(ClasslessRoutesOption.decode(bytes).routes).toEqual(routes); // order kept
    expect(ClasslessRoutesOption.decode(bytes).toString()).toBe(
      '169.254.254.2/32 via 0.0.0.0, 10.96.0.0/12 via 10.77.0.1, 0.0.0.0/0 via 10.77.0.1',
    );
  });

  it('host bits beyond the width are not sent, and are cleared when a sender sets them', () => {
    expect(new ClasslessRoutesOption([via('10.1.2.3/8')]).encode()).toEqual(hex('08 0a 0a000001'));
    // /25 carries 4 octets; the 7 host bits of the last one are not part of the subnet number
    expect(ClasslessRoutesOption.decode(hex('19 0a e5 00 ff 0a000001')).routes).toEqual([via('10.229.0.128/25')]);
  });

  it('rejects a width over 32, a cut descriptor or router, and an empty option (minimum 5 bytes)', () => {
    rejects(ClasslessRoutesOption, hex('21 0a000001 0a000001'), 'bad-option', 121);
    rejects(ClasslessRoutesOption, hex('ff 0a000001'), 'bad-option', 121);
    rejects(ClasslessRoutesOption, hex('18 0a 00'), 'truncated', 121); // descriptor cut
    rejects(ClasslessRoutesOption, hex('08 0a 0a0000'), 'truncated', 121); // router cut
    rejects(ClasslessRoutesOption, hex('00 0a000001 08'), 'truncated', 121); // second route cut
    rejects(ClasslessRoutesOption, hex(''), 'bad-option', 121);
  });

  it('refuses to encode a destination without a prefix length', () => {
    expect(() => new ClasslessRoutesOption([via('10.0.0.0')]).encode()).toThrow(RangeError);
    expect(() => new ClasslessRoutesOption([via('10.0.0.0/33')]).encode()).toThrow(RangeError);
  });

  it('more than 255 bytes of routes travel split (RFC 3396) and come back whole', () => {
    const routes = Array.from({ length: 40 }, (_, i) => ({ dst: `10.${i}.0.${i}/32`, gw: '0.0.0.0' }));
    const p = new DhcpPacket().set(Opt.CLASSLESS_ROUTES, new ClasslessRoutesOption(routes));
    expect(p.options.get(Opt.CLASSLESS_ROUTES)!.length).toBe(40 * 9);
    expect(DhcpPacket.decode(p.encode()).get(Opt.CLASSLESS_ROUTES, ClasslessRoutesOption)?.routes).toEqual(routes);
  });
});

describe('option 119, domain search (RFC 3397)', () => {
  // RFC 3397 section 3's example: "eng.apple.com." and "marketing.apple.com.", the second
  // compressed with a pointer to "apple.com." at offset 4 of the option data.
  const APPLE = hex(`
    03 ${ascii('eng')}              // offset 0: label "eng"
    05 ${ascii('apple')}            // offset 4: label "apple"
    03 ${ascii('com')}              // offset 10: label "com"
    00                              // offset 14: end of eng.apple.com
    09 ${ascii('marketing')}        // offset 15: label "marketing"
    c0 04                           // pointer (11 + 14-bit offset) to 4: apple.com
  `);

  it("encodes the RFC's example with the pointer and decodes it back", () => {
    const o = new DomainSearchOption(['eng.apple.com.', 'marketing.apple.com.']);
    expect(o.encode()).toEqual(APPLE);
    expect(DomainSearchOption.decode(APPLE).names).toEqual(['eng.apple.com', 'marketing.apple.com']);
  });

  it("decodes the RFC's example split into three options of 9 bytes (RFC 3396)", () => {
    const packet = Buffer.concat([
      new DhcpPacket().encode().subarray(0, 240),
      hex(`
        77 09 ${APPLE.subarray(0, 9).toString('hex')}   // 119, 9: 3 e n g 5 a p p l
        77 09 ${APPLE.subarray(9, 18).toString('hex')}  // 119, 9: e 3 c o m 0 9 m a
        77 09 ${APPLE.subarray(18).toString('hex')}     // 119, 9: r k e t i n g c0 04
        ff
      `),
    ]);
    const p = DhcpPacket.decode(packet);
    expect(p.get(Opt.DOMAIN_SEARCH, DomainSearchOption)?.names).toEqual(['eng.apple.com', 'marketing.apple.com']);
  });

  it('ends each uncompressed name with exactly one zero byte', () => {
    const one = hex(`07 ${ascii('example')} 03 ${ascii('com')} 00`);
    expect(new DomainSearchOption(['example.com']).encode()).toEqual(one);
    expect(new DomainSearchOption(['example.com.']).encode()).toEqual(one); // a trailing dot is the same name
    expect(new DomainSearchOption(['a', 'b']).encode()).toEqual(hex(`01 ${ascii('a')} 00 01 ${ascii('b')} 00`));
    expect(new DomainSearchOption(['.']).encode()).toEqual(hex('00')); // the root: just the terminator
    expect(DomainSearchOption.decode(hex('00')).names).toEqual(['.']);
  });

  it('a name ending in a pointer has no terminator of its own; a repeated name is one pointer', () => {
    expect(new DomainSearchOption(['svc.cluster.local', 'cluster.local', 'svc.cluster.local']).encode()).toEqual(
      hex(`
        03 ${ascii('svc')}          // offset 0
        07 ${ascii('cluster')}      // offset 4
        05 ${ascii('local')} 00     // offset 12, terminator at 18
        c0 04                       // cluster.local = pointer to 4
        c0 00                       // svc.cluster.local again = pointer to 0
      `),
    );
  });

  it('compresses case-insensitively (DNS names are)', () => {
    const b = new DomainSearchOption(['Example.COM', 'www.example.com']).encode();
    expect(b).toEqual(hex(`07 ${ascii('Example')} 03 ${ascii('COM')} 00 03 ${ascii('www')} c0 00`));
    expect(DomainSearchOption.decode(b).names).toEqual(['Example.COM', 'www.Example.COM']);
  });

  it('follows chains of backward pointers', () => {
    const b = hex(`
      01 ${ascii('c')} 00           // 0: c
      01 ${ascii('b')} c0 00        // 3: b.c
      01 ${ascii('a')} c0 03        // 7: a.b.c
      c0 07                         // 11: a.b.c again
      c1 00                         // 13: pointer past the data: offset 256 is not backwards
    `);
    rejects(DomainSearchOption, b, 'bad-option', 119);
    expect(DomainSearchOption.decode(b.subarray(0, 13)).names).toEqual(['c', 'b.c', 'a.b.c', 'a.b.c']);
  });

  it('rejects pointer loops: to itself, forwards, and into its own name', () => {
    rejects(DomainSearchOption, hex('c0 00'), 'bad-option', 119); // a pointer to itself
    rejects(DomainSearchOption, hex(`c0 02 01 ${ascii('a')} 00`), 'bad-option', 119); // forwards
    rejects(DomainSearchOption, hex(`01 ${ascii('a')} c0 00`), 'bad-option', 119); // back to its own first label
    // two names pointing at each other: 0 -> 5 (forwards) and 5 -> 2
    rejects(DomainSearchOption, hex(`01 ${ascii('a')} c0 05 00 01 ${ascii('b')} c0 02`), 'bad-option', 119);
  });

  it('rejects truncation: a cut label, a missing terminator, a cut pointer', () => {
    rejects(DomainSearchOption, hex(`03 ${ascii('ab')}`), 'truncated', 119);
    rejects(DomainSearchOption, hex(`01 ${ascii('a')}`), 'truncated', 119);
    rejects(DomainSearchOption, hex(`01 ${ascii('a')} 00 01 ${ascii('b')} c0`), 'truncated', 119);
  });

  it('rejects the reserved label types 01 and 10 (RFC 1035 4.1.4) and an empty list', () => {
    rejects(DomainSearchOption, hex(`41 ${ascii('a')} 00`), 'bad-option', 119);
    rejects(DomainSearchOption, hex(`81 ${ascii('a')} 00`), 'bad-option', 119);
    rejects(DomainSearchOption, hex(''), 'bad-option', 119);
  });

  const l63 = (c: string): string => c.repeat(63);

  it('rejects a name over 255 bytes on the wire, also when pointers make it long', () => {
    const long = [l63('a'), l63('b'), l63('c'), l63('d')].map((l) => `3f ${ascii(l)}`).join(' ') + ' 00';
    rejects(DomainSearchOption, hex(long), 'bad-option', 119); // 4 * 64 + 1 = 257
    const three = [l63('a'), l63('b'), l63('c')].map((l) => `3f ${ascii(l)}`).join(' ') + ' 00'; // 193
    expect(DomainSearchOption.decode(hex(three)).names).toHaveLength(1);
    rejects(DomainSearchOption, hex(`${three} 3f ${ascii(l63('d'))} c0 00`), 'bad-option', 119); // 64 + 193
  });

  it('refuses to encode an empty label, a label over 63 bytes or a name over 255 bytes', () => {
    expect(() => new DomainSearchOption(['a..b']).encode()).toThrow(RangeError);
    expect(() => new DomainSearchOption([`${'x'.repeat(64)}.com`]).encode()).toThrow(RangeError);
    expect(() => new DomainSearchOption([[l63('a'), l63('b'), l63('c'), l63('d')].join('.')]).encode()).toThrow(
      RangeError,
    );
  });

  it('refuses a name over 255 bytes even when its tail would be compressed (so it never sends what it rejects)', () => {
    const base = [l63('a'), l63('b'), l63('c')].join('.'); // 193 bytes on the wire
    const o = new DomainSearchOption([base, `${l63('d')}.${base}`]); // 257 bytes, 66 of them written
    expect(() => o.encode()).toThrow(RangeError);
  });

  it('pointers count from the start of the joined data when the list is over 255 bytes', () => {
    const names = Array.from({ length: 40 }, (_, i) => `host-${i}.ns.svc.cluster.local`);
    const p = new DhcpPacket().set(Opt.DOMAIN_SEARCH, new DomainSearchOption(names));
    expect(p.options.get(Opt.DOMAIN_SEARCH)!.length).toBeGreaterThan(255);
    const back = DhcpPacket.decode(p.encode()).get(Opt.DOMAIN_SEARCH, DomainSearchOption);
    expect(back?.names).toEqual(names);
  });
});

describe('RFC 2132 scalar options', () => {
  it('addresses (1, 28, 50, 54): exactly 4 bytes', () => {
    expect(new IpOption('255.255.255.0').encode()).toEqual(hex('ffffff00'));
    expect(IpOption.decode(hex('a9fefe02')).address).toBe('169.254.254.2');
    rejects(IpOption, hex('a9fefe'), 'bad-option');
    rejects(IpOption, hex('a9fefe0200'), 'bad-option');
    expect(() => new IpOption('10.0.0.256').encode()).toThrow(/not an IPv4 address/);
  });

  it('address lists (3, 6): a non-zero multiple of 4 bytes, order kept', () => {
    expect(new IpListOption(['10.96.0.10', '10.96.0.11']).encode()).toEqual(hex('0a60000a 0a60000b'));
    expect(IpListOption.decode(hex('0a60000a 0a60000b')).addresses).toEqual(['10.96.0.10', '10.96.0.11']);
    rejects(IpListOption, hex(''), 'bad-option');
    rejects(IpListOption, hex('0a60000a 0a60'), 'bad-option');
  });

  it('text (12, 15, 56, 60): not NUL-terminated on the wire; trailing NULs from clients are dropped', () => {
    expect(new TextOption('pod-a').encode()).toEqual(hex(ascii('pod-a')));
    expect(TextOption.decode(hex(`${ascii('pod-a')} 00 00`)).text).toBe('pod-a');
    expect(TextOption.decode(hex('e9')).text).toBe('\u00e9'); // bytes kept as latin1
    rejects(TextOption, hex(''), 'bad-option');
    rejects(TextOption, hex('00'), 'bad-option');
  });

  it('16-bit (26 MTU, 57 max message size): big-endian, exactly 2 bytes', () => {
    expect(new Uint16Option(1450).encode()).toEqual(hex('05aa'));
    expect(Uint16Option.decode(hex('0240')).value).toBe(576);
    rejects(Uint16Option, hex('05'), 'bad-option');
    rejects(Uint16Option, hex('0005aa'), 'bad-option');
  });

  it('durations (51, 58, 59): 32-bit big-endian seconds, 0xffffffff is infinite (RFC 2131 3.3)', () => {
    expect(new DurationOption(3600).encode()).toEqual(hex('00000e10'));
    expect(DurationOption.decode(hex('00000708')).seconds).toBe(1800);
    expect(DurationOption.decode(hex('ffffffff')).toString()).toBe('infinite');
    rejects(DurationOption, hex('000e10'), 'bad-option');
  });

  it('message type (53): one byte, named', () => {
    expect(new MessageTypeOption(5).encode()).toEqual(hex('05'));
    expect(MessageTypeOption.decode(hex('08')).toString()).toBe('INFORM');
    expect(MessageTypeOption.decode(hex('09')).toString()).toBe('unknown(9)');
    rejects(MessageTypeOption, hex('0101'), 'bad-option', 53);
    rejects(MessageTypeOption, hex(''), 'bad-option', 53);
  });

  it('parameter request list (55): one code per byte in the order given, not empty', () => {
    const prl = ParameterListOption.decode(hex('01 79 03 06 0c 0f 1c 2a 77'));
    expect(prl.codes).toEqual([1, 121, 3, 6, 12, 15, 28, 42, 119]);
    expect(prl.has(121) && !prl.has(26)).toBe(true);
    expect(prl.encode()).toEqual(hex('01 79 03 06 0c 0f 1c 2a 77'));
    rejects(ParameterListOption, hex(''), 'bad-option', 55);
  });

  it('overload (52): one byte', () => {
    expect(new Uint8Option(3).encode()).toEqual(hex('03'));
    rejects(Uint8Option, hex('0300'), 'bad-option');
  });

  it('opaque (61 client id, 82 relay agent info): any bytes, copied on decode', () => {
    const wire = hex('01 02420a4d0005'); // type 1 (Ethernet) + MAC
    const o = OpaqueOption.decode(wire);
    wire[0] = 0xff;
    expect(o.bytes).toEqual(hex('01 02420a4d0005'));
    expect(o.toString()).toBe('01:02:42:0a:4d:00:05');
  });
});
