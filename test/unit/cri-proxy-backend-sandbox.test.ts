// A VM pod's network from containerd 1.6's verbose PodSandboxStatus (the info below is what
// containerd 1.6.20 answered in the test rig, trimmed), and the CNI result tapmanager gets
// from it; problems name the field.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { readBackendSandbox, toCniResult } from '../../src/cri/proxy/backend-sandbox';

const NETNS = '/var/run/netns/cni-ef583f65-3dde-0a52-7d44-5036135c7064';
const INFO = {
  pid: 2082,
  processStatus: 'running',
  runtimeHandler: '',
  runtimeSpec: { linux: { namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'network', path: NETNS }] } },
  cniResult: {
    Interfaces: {
      cni0: { IPConfigs: null, Mac: '56:1c:2c:cb:54:ae', Sandbox: '' },
      eth0: { IPConfigs: [{ IP: '10.88.0.2', Gateway: '10.88.0.1' }], Mac: '1a:70:02:91:53:6b', Sandbox: NETNS },
      lo: {
        IPConfigs: [
          { IP: '127.0.0.1', Gateway: '' },
          { IP: '::1', Gateway: '' },
        ],
        Mac: '00:00:00:00:00:00',
        Sandbox: NETNS,
      },
      veth41bc954f: { IPConfigs: null, Mac: '02:b8:9d:45:8d:6b', Sandbox: '' },
    },
    DNS: [{}, {}],
    Routes: [{ dst: '0.0.0.0/0' }],
  },
};

const info = (o: unknown): Record<string, string> => ({ info: JSON.stringify(o) });

describe("a VM pod's network from the backend", () => {
  it("reads containerd 1.6's info and builds the CNI result with the kernel's prefix lengths", () => {
    const net = readBackendSandbox('sb1', info(INFO));
    expect(net.pid).toBe(2082);
    expect(net.netnsPath).toBe(NETNS);
    expect(net.interfaces.map((i) => i.name)).toEqual(['cni0', 'eth0', 'lo', 'veth41bc954f']);
    const asked: string[] = [];
    const res = toCniResult(net, (ifname, ip) => (asked.push(`${ifname} ${ip}`), 24));
    expect(asked).toEqual(['eth0 10.88.0.2']);
    expect(res).toEqual({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac: '1a:70:02:91:53:6b', sandbox: NETNS }],
      ips: [{ version: '4', address: '10.88.0.2/24', gateway: '10.88.0.1', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0' }],
    });
  });

  it("without a netns path in the spec, the sandbox process's netns", () => {
    const net = readBackendSandbox('sb1', info({ ...INFO, runtimeSpec: undefined }));
    expect(net.netnsPath).toBe('/proc/2082/ns/net');
  });

  it('names what it cannot use, as FAILED_PRECONDITION', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{}, /sandbox sb1 has no verbose info\["info"\]/],
      [{ info: '{' }, /info\["info"\] that is not JSON/],
      [info({ ...INFO, pid: 0 }), /info\["info"\]\.pid 0: not a process id/],
      [info({ ...INFO, pid: 'x' }), /info\["info"\]\.pid "x"/],
      [
        info({ ...INFO, cniResult: { Interfaces: { eth0: { IPConfigs: [{ IP: '10.0.0.300' }] } } } }),
        /cniResult\.Interfaces\.eth0\.IPConfigs\[0\]\.IP "10\.0\.0\.300"/,
      ],
      [info({ ...INFO, cniResult: { Interfaces: { eth0: { IPConfigs: 'no' } } } }), /IPConfigs "no"/],
    ];
    for (const [i, re] of cases) {
      let err: unknown;
      try {
        readBackendSandbox('sb1', i);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: status.FAILED_PRECONDITION, message: expect.stringMatching(re) });
    }
  });
});
