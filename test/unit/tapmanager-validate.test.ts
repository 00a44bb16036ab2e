// The setup request's shape (schema.ts) and the checks after it (validate.ts): every bad
// request is an EINVAL naming the field by its path and quoting a bounded part of the
// value, never an EIO, a TypeError or a stack overflow. The checks that need a real pod
// netns (interface sandboxes, the pod name as hostname) are in test/priv/tapmanager-validate.
import { describe, expect, it } from 'vitest';
import { TapError } from '../../src/tapmanager/errors';
import { FrameDecoder, MAX_FRAME_DEPTH } from '../../src/tapmanager/protocol';
import { LIMITS, parseSetup } from '../../src/tapmanager/schema';
import { guestHostname, validateSetup } from '../../src/tapmanager/validate';
import { nestsDeeperThan } from '../../src/util/json-depth';
import { quote } from '../../src/util/quote';
import { deep, mutate, prng } from '../fixtures/setup-fuzz';

const cniResult = {
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'veth1234', mac: '0a:00:00:00:00:01' },
    { name: 'eth0', mac: '0a:00:00:00:00:02', sandbox: '/run/netns/pod' },
  ],
  ips: [{ address: '10.1.0.2/24', gateway: '10.1.0.1', interface: 1 }],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: { nameservers: ['10.1.0.1'], search: ['svc.cluster.local'], options: ['ndots:5'] },
};
const base = {
  v: 1,
  id: 7,
  op: 'setup',
  sandboxId: 'sb-1',
  netnsPath: '/run/netns/pod',
  cniResult,
  dns: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] },
  hostname: 'vm-1',
  podName: 'vm-1',
  podNamespace: 'default',
  nicModel: 'virtio-net-pci',
  queues: 2,
};

/** The TapError a call throws (fails the test when it throws anything else or nothing). */
function einval(fn: () => unknown): TapError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TapError);
    const t = e as TapError;
    expect(t.code).toBe('EINVAL');
    expect(typeof t.field).toBe('string');
    expect(t.message.length).toBeLessThan(600);
    return t;
  }
  throw new Error('did not throw');
}

const withCni = (patch: Record<string, unknown>): unknown => ({ ...base, cniResult: { ...cniResult, ...patch } });

describe('setup request shape', () => {
  it('takes a full valid request and keeps only the CNI fields tapwire reads', () => {
    const out = parseSetup({
      ...base,
      cniResult: { ...cniResult, foo: deep(100_000), interfaces: [{ ...cniResult.interfaces[1], x: 1 }] },
    });
    expect(out.cniResult).not.toHaveProperty('foo');
    expect(out.cniResult!.interfaces![0]).toEqual(cniResult.interfaces[1]);
    expect(out.dns).toEqual(base.dns);
  });

  it('names the field and the value of the cases the review found', () => {
    let e = einval(() => parseSetup({ ...base, dns: { servers: [5] } }));
    expect(e.field).toBe('dns.servers[0]');
    expect(e.message).toBe('invalid dns.servers[0] 5: must be a string');
    e = einval(() => parseSetup({ ...base, dns: { servers: 'abc' } }));
    expect(e.field).toBe('dns.servers');
    expect(e.message).toContain('"abc"');
    e = einval(() => parseSetup(withCni({ dns: { nameservers: [5] } })));
    expect(e.field).toBe('cniResult.dns.nameservers[0]');
    e = einval(() => parseSetup(withCni({ dns: { nameservers: ['ns.example'] } })));
    expect(e).toMatchObject({ field: 'cniResult.dns.nameservers[0]', message: expect.stringContaining('IP address') });
    e = einval(() => parseSetup(withCni({ dns: { nameservers: deep(200_000) } })));
    expect(e.field).toBe('cniResult.dns.nameservers[0]');
    // a field the CNI spec does not define is dropped, however deep
    expect(parseSetup(withCni({ dns: deep(200_000, null, 'object') })).cniResult!.dns).toEqual({});
    e = einval(() => parseSetup({ ...base, cniResult: deep(200_000, null, 'object') }));
    expect(e.field).toBe('cniResult.cniVersion');
    e = einval(() => parseSetup({ ...base, cniResult: deep(200_000) }));
    expect(e).toMatchObject({
      field: 'cniResult',
      message: expect.stringMatching(/^invalid cniResult \[\[\[.*\.\.\.: must be an object$/),
    });
  });

  it('refuses unknown fields of the request and of the CRI dns, naming them', () => {
    let e = einval(() => parseSetup({ ...base, frob: deep(100_000, null, 'object') }));
    expect(e.field).toBe('frob');
    expect(e.message).toMatch(/^invalid frob \{"a":\{"a":.*\.\.\.: is not a known field$/);
    e = einval(() => parseSetup({ ...base, dns: { ...base.dns, nameservers: [] } }));
    expect(e.field).toBe('dns.nameservers');
    e = einval(() => parseSetup(JSON.parse(`{"__proto__": {"polluted": 1}, ${JSON.stringify(base).slice(1)}`)));
    expect(e.field).toBe('__proto__');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    e = einval(() => parseSetup({ ...base, 'a.b': 1 }));
    expect(e.field).toBe('["a.b"]');
    e = einval(() => parseSetup({ ...base, ['k'.repeat(100_000)]: 1 }));
    expect(e.field).toBe(`["${'k'.repeat(39)}... (100000 characters)]`);
  });

  it('refuses wrong types, with the path of the field', () => {
    const cases: [unknown, string][] = [
      [null, 'request'],
      [[], 'request'],
      ['setup', 'request'],
      [{ ...base, op: 'teardown' }, 'op'],
      [{ ...base, sandboxId: 5 }, 'sandboxId'],
      [{ ...base, sandboxId: '../x' }, 'sandboxId'],
      [{ ...base, netnsPath: 'relative' }, 'netnsPath'],
      [{ ...base, netnsPath: '/a\u0000b' }, 'netnsPath'],
      [{ ...base, netnsPath: ['/'] }, 'netnsPath'],
      [{ ...base, cniResult: undefined }, 'cniResult'],
      [{ ...base, cniResult: [] }, 'cniResult'],
      [withCni({ cniVersion: 1 }), 'cniResult.cniVersion'],
      [withCni({ cniVersion: '0.2.0' }), 'cniResult.cniVersion'],
      [withCni({ ips: undefined }), 'cniResult.ips'],
      [withCni({ ips: {} }), 'cniResult.ips'],
      [withCni({ ips: [null] }), 'cniResult.ips[0]'],
      [withCni({ ips: [{}] }), 'cniResult.ips[0].address'],
      [withCni({ ips: [{ address: '10.0.0.1' }] }), 'cniResult.ips[0].address'],
      [withCni({ ips: [{ address: '10.0.0.1/33' }] }), 'cniResult.ips[0].address'],
      [withCni({ ips: [{ address: 'fd00::1/129' }] }), 'cniResult.ips[0].address'],
      [withCni({ ips: [{ address: '10.0.0.1/8', gateway: 'x' }] }), 'cniResult.ips[0].gateway'],
      [withCni({ ips: [{ address: '10.0.0.1/8', interface: 1.5 }] }), 'cniResult.ips[0].interface'],
      [withCni({ ips: [{ address: '10.0.0.1/8', interface: -1 }] }), 'cniResult.ips[0].interface'],
      [withCni({ ips: [{ address: '10.0.0.1/8', version: 4 }] }), 'cniResult.ips[0].version'],
      [withCni({ interfaces: [{ name: 5 }] }), 'cniResult.interfaces[0].name'],
      [withCni({ interfaces: [{ name: 'eth0', sandbox: {} }] }), 'cniResult.interfaces[0].sandbox'],
      [withCni({ interfaces: [{ name: 'eth0', mtu: '1500' }] }), 'cniResult.interfaces[0].mtu'],
      [withCni({ routes: [{ dst: 'default' }] }), 'cniResult.routes[0].dst'],
      [withCni({ routes: [{ dst: '0.0.0.0/0', gw: 1 }] }), 'cniResult.routes[0].gw'],
      [withCni({ dns: [] }), 'cniResult.dns'],
      [withCni({ dns: { search: 'a b' } }), 'cniResult.dns.search'],
      [withCni({ dns: { domain: ['x'] } }), 'cniResult.dns.domain'],
      [{ ...base, dns: null }, 'dns'],
      [{ ...base, dns: { searches: [{}] } }, 'dns.searches[0]'],
      [{ ...base, hostname: 5 }, 'hostname'],
      [{ ...base, podName: ['x'] }, 'podName'],
      [{ ...base, podNamespace: {} }, 'podNamespace'],
      [{ ...base, nicModel: 'virtio net' }, 'nicModel'],
      [{ ...base, queues: '2' }, 'queues'],
      [{ ...base, queues: 1.5 }, 'queues'],
      [{ ...base, queues: 0 }, 'queues'],
      [{ ...base, queues: 17 }, 'queues'],
      [{ ...base, id: 'x' }, 'id'],
    ];
    for (const [req, field] of cases) expect(einval(() => parseSetup(req)).field, JSON.stringify(req)).toBe(field);
  });

  it('bounds every list and string', () => {
    const many = <T>(n: number, x: T): T[] => Array.from({ length: n }, () => x);
    const cases: [unknown, string, string][] = [
      [withCni({ interfaces: many(LIMITS.interfaces + 1, { name: 'e' }) }), 'cniResult.interfaces', 'at most 64'],
      [withCni({ ips: many(LIMITS.ips + 1, cniResult.ips[0]) }), 'cniResult.ips', 'at most 64'],
      [
        withCni({ routes: many(LIMITS.routes + 1, { dst: '0.0.0.0/0' }) }),
        'cniResult.routes',
        `at most ${LIMITS.routes}`,
      ],
      [withCni({ dns: { nameservers: many(33, '10.0.0.1') } }), 'cniResult.dns.nameservers', 'at most 32'],
      [withCni({ dns: { search: many(65, 'a') } }), 'cniResult.dns.search', 'at most 64'],
      [{ ...base, dns: { options: many(65, 'a') } }, 'dns.options', 'at most 64'],
      [{ ...base, sandboxId: 'a'.repeat(129) }, 'sandboxId', 'at most 128'],
      [{ ...base, netnsPath: `/${'a'.repeat(LIMITS.path)}` }, 'netnsPath', 'at most 4096'],
      [{ ...base, hostname: 'a'.repeat(254) }, 'hostname', 'at most 253'],
      [withCni({ interfaces: [{ name: 'e'.repeat(257) }] }), 'cniResult.interfaces[0].name', 'at most 256'],
    ];
    for (const [req, field, why] of cases) {
      const e = einval(() => parseSetup(req));
      expect(e.field).toBe(field);
      expect(e.message).toContain(why);
    }
    // a 1 MB value is quoted in ~100 characters and its size is told
    const e = einval(() => parseSetup({ ...base, sandboxId: 's'.repeat(1 << 20) }));
    expect(e.message).toBe(
      `invalid sandboxId "${'s'.repeat(99)}... (1048576 characters): must be at most 128 characters`,
    );
  });

  it('never answers a hostile request with anything but EINVAL naming a field (seeded fuzz)', () => {
    const seed = Number(process.env.SETUP_FUZZ_SEED ?? 20260914);
    const rand = prng(seed);
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const req = mutate(base, rand);
      try {
        parseSetup(req);
        // over the wire the same request is JSON: decoding it must agree
        parseSetup(JSON.parse(JSON.stringify(req) ?? 'null'));
      } catch (e) {
        if (!(e instanceof TapError) || e.code !== 'EINVAL' || !e.field || e.message.length > 600) {
          throw new Error(`case ${i} (seed ${seed}): ${(e as Error).stack}\n${quote(req, 2000)}`);
        }
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(1000);
  });
});

describe('after the shape', () => {
  it('checks the netns last among the request fields, and names it', () => {
    // the shape goes first: a bad cniResult is reported even with a bad netnsPath
    expect(einval(() => validateSetup({ ...(withCni({ ips: 5 }) as object), netnsPath: '/etc/hostname' })).field).toBe(
      'cniResult.ips',
    );
    expect(einval(() => validateSetup({ ...base, netnsPath: '/etc/hostname' })).field).toBe('netnsPath');
    expect(einval(() => validateSetup({ ...base, netnsPath: '/nonexistent/x' })).field).toBe('netnsPath');
  });

  it('derives the guest hostname from the pod name as the kubelet does', () => {
    expect(guestHostname({ hostname: 'h', podName: 'p' })).toBe('h');
    expect(guestHostname({ podName: 'p' })).toBe('p');
    expect(guestHostname({})).toBeUndefined();
    expect(guestHostname({ podName: `${'a'.repeat(62)}-b` })).toBe('a'.repeat(62));
    expect(guestHostname({ podName: `${'a'.repeat(61)}.-bbb` })).toBe('a'.repeat(61));
    expect(guestHostname({ podName: 'b'.repeat(253) })).toBe('b'.repeat(63));
    // up to 63 the name is kept as it is, as the kubelet keeps it (and tapwire-cri): not a DHCP name, refused
    expect(guestHostname({ podName: 'vm-' })).toBe('vm-');
  });
});

describe('frames', () => {
  it('measures nesting without counting brackets inside strings', () => {
    const text = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
    expect(nestsDeeperThan(text(deep(10)), 10)).toBe(false);
    expect(nestsDeeperThan(text(deep(11)), 10)).toBe(true);
    expect(nestsDeeperThan(text(deep(11, null, 'object')), 10)).toBe(true);
    expect(nestsDeeperThan(text({ a: '[[[[[[[[[[[[', b: '\\"[[[[[[[[[[[[[' }), 2)).toBe(false);
    expect(nestsDeeperThan(text([{ a: '"]]]]' }, [[[[]]]]]), 4)).toBe(true);
  });

  it('the decoder refuses a frame nested deeper than MAX_FRAME_DEPTH and takes one at it', () => {
    const frame = (depth: number): Buffer => {
      const body = Buffer.from(`${'['.repeat(depth)}${']'.repeat(depth)}`);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      return Buffer.concat([head, body]);
    };
    expect(new FrameDecoder().push(frame(MAX_FRAME_DEPTH))).toHaveLength(1);
    expect(() => new FrameDecoder().push(frame(MAX_FRAME_DEPTH + 1))).toThrow(/nests deeper than 64/);
    expect(() => new FrameDecoder().push(frame(300_000))).toThrow(/nests deeper than 64/);
  });
});

describe('quote', () => {
  it('is JSON for small values and bounded for any', () => {
    expect(quote('a"b')).toBe('"a\\"b"');
    expect(quote({ a: [1, null, true, 'x'] })).toBe('{"a":[1,null,true,"x"]}');
    expect(quote(undefined)).toBe('undefined');
    expect(quote(deep(1_000_000))).toBe(`${'['.repeat(100)}...`);
    expect(quote(Array.from({ length: 1e6 }, () => 1)).length).toBe(103);
    expect(quote('z'.repeat(1e6))).toBe(`"${'z'.repeat(99)}... (1000000 characters)`);
    expect(quote({ ['k'.repeat(1000)]: 1 }, 20)).toBe(`{"${'k'.repeat(18)}...`);
  });
});
