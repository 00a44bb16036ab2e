// What the proxy changes in a VM pod's calls (src/cri/proxy/vm-requests.ts), decoded with the
// official proto: which RunPodSandbox requests are VM pods (handler or annotation), the
// backend's handler and the VM-pod mark, the container's key, fd socket and mount after the
// kubelet's own, tapwire's info in a status; unknown fields kept; malformed input refused.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { CriError } from '../../src/cri/errors';
import { loadCriServices } from '../../src/cri/proto';
import {
  backendRunRequest,
  createRequestSandbox,
  DEFAULT_VM_SELECTOR,
  isMarkedVmPod,
  readRunRequest,
  vmContainerRequest,
  withTapwireInfo,
} from '../../src/cri/proxy/vm-requests';
import { stringField } from '../../src/cri/proxy/wire';

const { runtime } = loadCriServices();
const UNKNOWN = stringField(88, 'a field from a newer kubelet');
const runRequest = (handler: string, annotations: Record<string, string> = {}): Buffer =>
  Buffer.concat([
    runtime.RunPodSandbox!.requestSerialize({
      config: { metadata: { name: 'p', uid: 'u', namespace: 'n', attempt: 0 }, annotations },
      runtime_handler: handler,
    }),
    UNKNOWN,
  ]);

describe('VM pod requests', () => {
  it('a VM pod is asked for by the handler or by the annotation "true"', () => {
    const sel = DEFAULT_VM_SELECTOR;
    expect(readRunRequest(runRequest('tapwire'), sel).vm).toBe(true);
    expect(readRunRequest(runRequest('', { 'tapwire.io/vm': 'true' }), sel).vm).toBe(true);
    expect(readRunRequest(runRequest('runc', { 'tapwire.io/vm': 'false' }), sel).vm).toBe(false);
    expect(readRunRequest(runRequest(''), sel).vm).toBe(false);
    expect(readRunRequest(runRequest('', { 'tapwire.io/vm': 'true' }), { ...sel, annotation: '' }).vm).toBe(false);
    expect(readRunRequest(runRequest('kata', { x: 'y' }), sel)).toMatchObject({ handler: 'kata', vm: false });
  });

  it('the backend gets its own handler and the VM-pod mark, and everything else as sent', () => {
    const out = backendRunRequest(runRequest('tapwire', { team: 'a' }), {
      ...DEFAULT_VM_SELECTOR,
      backendHandler: 'runc',
    });
    const req = runtime.RunPodSandbox!.requestDeserialize(out) as {
      config: { metadata: { name: string }; annotations: Record<string, string> };
      runtime_handler: string;
    };
    expect(req.runtime_handler).toBe('runc');
    expect(req.config.metadata.name).toBe('p');
    expect(req.config.annotations).toEqual({ team: 'a', 'tapwire.io/vm-pod': 'true' });
    expect(isMarkedVmPod(req.config.annotations)).toBe(true);
    expect(out.includes(UNKNOWN)).toBe(true);
    // the backend's default handler is an explicit empty string, overriding "tapwire"
    const dflt = runtime.RunPodSandbox!.requestDeserialize(
      backendRunRequest(runRequest('tapwire'), DEFAULT_VM_SELECTOR),
    );
    expect((dflt as { runtime_handler: string }).runtime_handler).toBe('');
  });

  it("a VM pod's container gets the key and fd socket after the kubelet's environment, and the socket's directory read-only", () => {
    const raw = Buffer.concat([
      runtime.CreateContainer!.requestSerialize({
        pod_sandbox_id: 'sb1',
        config: {
          metadata: { name: 'vm' },
          envs: [{ key: 'TAPWIRE_NET_KEY', value: Buffer.from('spoofed') }],
          mounts: [{ container_path: '/data', host_path: '/srv/data' }],
        },
      }),
      UNKNOWN,
    ]);
    expect(createRequestSandbox(raw)).toBe('sb1');
    const out = vmContainerRequest(raw, 'k'.repeat(32), '/run/tapwire/fd/fd.sock');
    const req = runtime.CreateContainer!.requestDeserialize(out) as {
      pod_sandbox_id: string;
      config: {
        envs: { key: string; value: Buffer }[];
        mounts: { container_path: string; host_path: string; readonly: boolean }[];
      };
    };
    expect(req.pod_sandbox_id).toBe('sb1');
    expect(req.config.envs.map((e) => [e.key, Buffer.from(e.value).toString()])).toEqual([
      ['TAPWIRE_NET_KEY', 'spoofed'],
      ['TAPWIRE_NET_KEY', 'k'.repeat(32)],
      ['TAPWIRE_FD_SOCKET', '/run/tapwire/fd/fd.sock'],
    ]);
    expect(req.config.mounts).toMatchObject([
      { container_path: '/data', host_path: '/srv/data', readonly: false },
      { container_path: '/run/tapwire/fd', host_path: '/run/tapwire/fd', readonly: true },
    ]);
    expect(out.includes(UNKNOWN)).toBe(true);
  });

  it("adds tapwire's view to a status's info", () => {
    const raw = runtime.PodSandboxStatus!.responseSerialize({ status: { id: 'sb1' }, info: { info: '{"pid":1}' } });
    const res = runtime.PodSandboxStatus!.responseDeserialize(withTapwireInfo(raw, { netKey: 'k' })) as {
      status: { id: string };
      info: Record<string, string>;
    };
    expect(res.status.id).toBe('sb1');
    expect(res.info).toEqual({ info: '{"pid":1}', tapwire: '{"netKey":"k"}' });
  });

  it('refuses a request that is not a protobuf message with INVALID_ARGUMENT', () => {
    const bad = Buffer.from([0x0a, 0x7f, 0x00]);
    expect(() => readRunRequest(bad, DEFAULT_VM_SELECTOR)).toThrow(CriError);
    try {
      readRunRequest(bad, DEFAULT_VM_SELECTOR);
    } catch (e) {
      expect((e as CriError).code).toBe(status.INVALID_ARGUMENT);
      expect((e as CriError).message).toMatch(/^malformed RunPodSandboxRequest: field 1 at byte 0 runs past/);
    }
    expect(() => vmContainerRequest(bad, 'k', '/run/x/fd.sock')).toThrow(/malformed CreateContainerRequest/);
  });
});
