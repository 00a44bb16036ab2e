// CRI message conversion without a server: config validation, port mappings and DNS,
// pod IP ordering, ListPodSandbox filters, and per-sandbox serialization.
import { describe, expect, it } from 'vitest';
import { matchesFilter, podIps, toPodSandboxStatus, validateConfig } from '../../src/cri/convert';
import { KeyedLock } from '../../src/util/keyed-lock';
import { NameIndex, sandboxName } from '../../src/cri/names';
import { MAX_PORT_MAPPINGS } from '../../src/cni/args';
import type { SandboxRecord } from '../../src/cri/record';

const meta = { name: 'vm', uid: 'u1', namespace: 'ns' };

function rec(over: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    v: 1,
    id: 'ab'.repeat(32),
    metadata: { ...meta, attempt: 1 },
    labels: { app: 'vm', tier: 'db' },
    annotations: {},
    runtimeHandler: '',
    hostname: 'vm',
    portMappings: [],
    createdAt: '1700000000000000000',
    state: 'SANDBOX_READY',
    netnsPath: '/run/tapwire/netns/x',
    network: { name: 'n', ifName: 'eth0', loopback: true },
    cniResult: {
      cniVersion: '1.0.0',
      ips: [{ address: 'fd00::5/64' }, { address: '10.0.0.5/24', gateway: '10.0.0.1' }],
    },
    networkDown: false,
    ...over,
  };
}

describe('validateConfig', () => {
  it('keeps host-port mappings only, lowercases protocols, keeps DNS', () => {
    const v = validateConfig({
      metadata: meta,
      port_mappings: [
        { protocol: 'UDP', container_port: 53, host_port: 5353, host_ip: '127.0.0.1' },
        { protocol: 'TCP', container_port: 80, host_port: 0 },
        { protocol: 'SCTP', container_port: 9, host_port: 9 },
      ],
      dns_config: { servers: ['10.96.0.10'], searches: [], options: [] },
    });
    expect(v.portMappings).toEqual([
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
      { hostPort: 9, containerPort: 9, protocol: 'sctp' },
    ]);
    expect(v.dns).toEqual({ servers: ['10.96.0.10'], searches: [], options: [] });
    expect(v.hostname).toBe('vm');
    expect(validateConfig({ metadata: meta, dns_config: { servers: [] } }).dns).toBeUndefined();
  });

  it('names what is wrong', () => {
    expect(() => validateConfig({ metadata: { ...meta, name: '' } })).toThrow('config.metadata.name must not be empty');
    expect(() => validateConfig({ metadata: { ...meta, uid: 'u'.repeat(254) } })).toThrow(
      /^config\.metadata\.uid "u{99}\.\.\. \(254 characters\) is 254 bytes; at most 253 are taken/,
    );
    expect(() =>
      validateConfig({
        metadata: meta,
        port_mappings: [{ container_port: 80, host_port: 8080, host_ip: 'i'.repeat(500) }],
      }),
    ).toThrow(/^config\.port_mappings\[0\]\.host_ip "i{99}\.\.\. \(500 characters\) is not an IP address$/);
    expect(
      validateConfig({ metadata: meta, port_mappings: [{ container_port: 80, host_port: 8080, host_ip: '::1' }] })
        .portMappings,
    ).toEqual([{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '::1' }]);
    expect(() => validateConfig({ metadata: { ...meta, namespace: 'a;b' } })).toThrow(
      'config.metadata.namespace "a;b" must not contain ";", "=" or NUL',
    );
    expect(validateConfig({ metadata: { ...meta, name: 'é'.repeat(126) }, hostname: 'h' }).metadata.name).toHaveLength(
      126,
    );
    expect(() => validateConfig({ metadata: { ...meta, name: 'é'.repeat(127) }, hostname: 'h' })).toThrow(
      /is 254 bytes/,
    );
    expect(() => validateConfig({ metadata: meta, port_mappings: [{ protocol: 'ICMP', host_port: 1 }] })).toThrow(
      'config.port_mappings[0].protocol "ICMP" is unknown',
    );
    expect(() =>
      validateConfig({ metadata: meta, linux: { security_context: { namespace_options: { network: 'NODE' } } } }),
    ).toThrow(/host networking/);
    expect(
      validateConfig({ metadata: meta, linux: { security_context: { namespace_options: { network: 'POD' } } } })
        .metadata,
    ).toEqual({ ...meta, attempt: 0 });
  });
});

describe('port mapping cap', () => {
  const mappings = (n: number, hostPort = 1): object[] =>
    Array.from({ length: n }, (_, i) => ({ protocol: 'TCP', container_port: 80, host_port: hostPort && hostPort + i }));

  it(`takes ${MAX_PORT_MAPPINGS} host-port mappings and refuses one more, naming the field and the count`, () => {
    expect(MAX_PORT_MAPPINGS).toBe(256);
    expect(validateConfig({ metadata: meta, port_mappings: mappings(256) }).portMappings).toHaveLength(256);
    expect(() => validateConfig({ metadata: meta, port_mappings: mappings(257) })).toThrow(
      'config.port_mappings has 257 mappings with a host port; at most 256 are supported',
    );
    expect(() => validateConfig({ metadata: meta, port_mappings: mappings(10_000) })).toThrow(
      /^config\.port_mappings has 10000 mappings/,
    );
  });

  it('counts only mappings with a host port (the others never reach the portmap plugin)', () => {
    const many = [...mappings(1000, 0), ...mappings(3)];
    expect(validateConfig({ metadata: meta, port_mappings: many }).portMappings).toHaveLength(3);
  });
});

describe('NameIndex', () => {
  const m = { name: 'p', namespace: 'ns', uid: 'u', attempt: 0 };
  it('holds one sandbox per (name, namespace, uid, attempt) and says which', () => {
    const names = new NameIndex();
    names.reserve(m, 'a'.repeat(64));
    names.reserve(m, 'a'.repeat(64)); // the holder again: idempotent
    expect(() => names.reserve(m, 'b'.repeat(64))).toThrow(
      `failed to reserve sandbox name "p_ns_u_0": name "p_ns_u_0" is reserved for "${'a'.repeat(64)}"`,
    );
    names.reserve({ ...m, attempt: 1 }, 'c'.repeat(64));
    names.release(m, 'b'.repeat(64)); // not the holder: no effect
    expect(names.holder(m)).toBe('a'.repeat(64));
    names.release(m, 'a'.repeat(64));
    names.reserve(m, 'b'.repeat(64));
    expect(names.holder(m)).toBe('b'.repeat(64));
  });

  it("keys on the parts, not containerd's joined string ('_' in a part does not collide)", () => {
    const names = new NameIndex();
    names.reserve({ ...m, name: 'a_b', namespace: 'c' }, '1');
    names.reserve({ ...m, name: 'a', namespace: 'b_c' }, '2');
    expect(sandboxName({ ...m, name: 'a_b', namespace: 'c' })).toBe(sandboxName({ ...m, name: 'a', namespace: 'b_c' }));
  });
});

describe('status and filters', () => {
  it('reports IPv4 first as ip, the rest as additional_ips, none once the network is down', () => {
    expect(podIps(rec())).toEqual(['10.0.0.5', 'fd00::5']);
    expect(toPodSandboxStatus(rec()).network).toEqual({ ip: '10.0.0.5', additional_ips: [{ ip: 'fd00::5' }] });
    expect(podIps(rec({ networkDown: true, state: 'SANDBOX_NOTREADY' }))).toEqual([]);
  });

  it('filters by id prefix, state and every selector label', () => {
    const r = rec();
    expect(matchesFilter(r, undefined)).toBe(true);
    expect(matchesFilter(r, { id: 'abab' })).toBe(true);
    expect(matchesFilter(r, { id: 'ba' })).toBe(false);
    expect(matchesFilter(r, { state: { state: 'SANDBOX_READY' } })).toBe(true);
    expect(matchesFilter(r, { state: { state: 'SANDBOX_NOTREADY' } })).toBe(false);
    expect(matchesFilter(r, { label_selector: { app: 'vm', tier: 'db' } })).toBe(true);
    expect(matchesFilter(r, { label_selector: { app: 'vm', tier: 'web' } })).toBe(false);
  });
});

describe('KeyedLock', () => {
  it('serializes one key, runs others in parallel, survives a failure', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a1 = lock.run('a', async () => {
      log.push('a1 start');
      await gate;
      log.push('a1 end');
      throw new Error('a1 failed');
    });
    const a2 = lock.run('a', async () => {
      log.push('a2');
    });
    const b = lock.run('b', async () => {
      log.push('b');
    });
    await b;
    expect(log).toEqual(['a1 start', 'b']);
    release();
    await expect(a1).rejects.toThrow('a1 failed');
    await a2;
    expect(log).toEqual(['a1 start', 'b', 'a1 end', 'a2']);
  });
});
