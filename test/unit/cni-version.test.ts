// CNI result version conversion, CNI_ARGS and runtimeConfig capability filtering.
import { describe, expect, it } from 'vitest';
import { cniArgs, CniError, convertResult, forTapwire, pluginStdin, runtimeConfigFor, toVersion } from '../../src/cni';

const v04 = {
  cniVersion: '0.4.0',
  interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }],
  ips: [
    { version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 },
    { version: '6', address: 'fd00::2/64', interface: 0 },
  ],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: { nameservers: ['10.0.0.1'] },
};

describe('result versions', () => {
  it('0.4.0 -> 1.0.0 drops ips[].version, and back adds it from the address family', () => {
    const r1 = convertResult(v04, '1.0.0');
    expect(r1.cniVersion).toBe('1.0.0');
    expect(r1.ips).toEqual([
      { address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 },
      { address: 'fd00::2/64', interface: 0 },
    ]);
    expect(toVersion(r1, '0.4.0')).toEqual(v04);
  });

  it('forTapwire keeps 0.4.0 and 1.x and lifts 0.3.x to 0.4.0', () => {
    expect(forTapwire(convertResult(v04, '1.0.0')).cniVersion).toBe('1.0.0');
    expect(forTapwire(convertResult(v04, '0.3.1'))).toEqual(v04);
  });

  it('refuses results it cannot read, naming the plugin', () => {
    expect(() => convertResult({ cniVersion: '0.2.0', ip4: {} }, '1.0.0', 'old')).toThrow(
      expect.objectContaining({ code: 1, plugin: 'old' }),
    );
    expect(() => convertResult('x', '1.0.0', 'p')).toThrow(CniError);
    expect(() => convertResult({ cniVersion: '1.0.0', ips: [{}] }, '1.0.0', 'p')).toThrow(
      /ips\[0\].address is missing/,
    );
    expect(() => convertResult({ cniVersion: '1.0.0', ips: 3 }, '1.0.0', 'p')).toThrow(/"ips" is not a list/);
  });
});

describe('CNI_ARGS and runtimeConfig', () => {
  it('builds the kubelet CNI_ARGS string', () => {
    expect(cniArgs({ podNamespace: 'default', podName: 'vm-1', infraContainerId: 'abc', podUid: 'u-1' })).toBe(
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=vm-1;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1',
    );
    expect(() => cniArgs({ podNamespace: 'a;b', podName: 'n', infraContainerId: 'i' })).toThrow(
      /K8S_POD_NAMESPACE "a;b"/,
    );
  });

  it('gives each plugin only the capabilities it declares', () => {
    const caps = {
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }],
      dns: { servers: ['1.1.1.1'] },
    };
    expect(runtimeConfigFor({ type: 'bridge' }, caps)).toBeUndefined();
    expect(runtimeConfigFor({ type: 'portmap', capabilities: { portMappings: true } }, caps)).toEqual({
      portMappings: caps.portMappings,
    });
    expect(runtimeConfigFor({ type: 'x', capabilities: { dns: true, portMappings: false } }, caps)).toEqual({
      dns: caps.dns,
    });
    const stdin = JSON.parse(
      pluginStdin(
        { cniVersion: '1.0.0', name: 'net', disableCheck: false, file: '', plugins: [] },
        { type: 'portmap', capabilities: { portMappings: true }, runtimeConfig: { stale: 1 } },
        convertResult(v04, '1.0.0'),
        caps,
      ).toString(),
    );
    expect(stdin).toMatchObject({
      type: 'portmap',
      name: 'net',
      cniVersion: '1.0.0',
      runtimeConfig: { portMappings: caps.portMappings },
    });
    expect(stdin.prevResult.ips[0].version).toBeUndefined();
  });
});
