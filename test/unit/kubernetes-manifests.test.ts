// deploy/kubernetes: every manifest valid against the Kubernetes API schemas
// (kubernetes-models), and the DaemonSet consistent with the ConfigMap and itself.
import { describe, expect, it } from 'vitest';
import { readManifests, unknownFields, validateObject, type KubeObject } from '../helpers/kube-manifests';

interface Container {
  name: string;
  command?: string[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { containerPort: number; name?: string }[];
  volumeMounts?: { name: string; mountPath: string; mountPropagation?: string }[];
  securityContext?: { privileged?: boolean };
}

describe('deploy/kubernetes manifests', () => {
  const all = readManifests();
  const one = (kind: string) => all.find((m) => m.obj.kind === kind)!.obj;

  it('are all valid objects of the Kubernetes API', async () => {
    expect(all.map((m) => m.obj.kind)).toEqual(expect.arrayContaining(['Namespace', 'ConfigMap', 'DaemonSet']));
    for (const { file, obj } of all) {
      await expect(validateObject(obj), `${file}: ${obj.kind} ${obj.metadata.name}`).resolves.toBeUndefined();
    }
  });

  it('the validation sees a wrong type and a missing required field', async () => {
    const ds = structuredClone(one('DaemonSet')) as KubeObject & { spec: Record<string, unknown> };
    (ds.spec.template as { spec: Record<string, unknown> }).spec.hostNetwork = 'yes';
    await expect(validateObject(ds)).rejects.toThrow(/hostNetwork must be boolean/);
    delete ds.spec.selector;
    await expect(validateObject(ds)).rejects.toThrow(/selector/);
  });

  it('have no field their kind does not have (kubernetes-models lets unknown fields through)', () => {
    const objs = all.map((m) => m.obj);
    expect(unknownFields(objs, (i) => `${all[i]!.file}: ${objs[i]!.kind}`)).toEqual([]);
  });

  it('a typo in a field name is refused, naming the field and where, at any depth', async () => {
    const ds = structuredClone(one('DaemonSet')) as KubeObject & {
      spec: { template: { spec: Record<string, unknown> } };
    };
    const pod = ds.spec.template.spec;
    pod.hostNetwrk = pod.hostNetwork;
    delete pod.hostNetwork;
    const c = (pod.containers as Record<string, unknown>[])[0]!;
    c.imagePullPolcy = 'IfNotPresent';
    (c.securityContext as Record<string, unknown>).privilegd = true;
    // the schema validation does not see any of them
    await expect(validateObject(ds)).resolves.toBeUndefined();
    const errors = unknownFields([ds], () => 'daemonset.yaml');
    expect(errors).toHaveLength(3);
    const at = 'daemonset.yaml.spec.template.spec';
    expect(errors.sort()).toEqual([
      `${at}.containers[0].imagePullPolcy: no such field in IContainer`,
      `${at}.containers[0].securityContext.privilegd: no such field in ISecurityContext`,
      `${at}.hostNetwrk: no such field in IPodSpec`,
    ]);
    const cm = structuredClone(one('ConfigMap'));
    cm.metadata = { ...cm.metadata, namspace: 'x' } as KubeObject['metadata'];
    expect(unknownFields([cm], () => 'configmap.yaml')).toEqual([
      'configmap.yaml.metadata.namspace: no such field in IObjectMeta',
    ]);
  });

  it('the DaemonSet: host network, no host PID, its mounts and ConfigMap exist, the scrape annotation names its port', () => {
    const ds = one('DaemonSet') as KubeObject & {
      spec: {
        template: {
          metadata: { annotations: Record<string, string> };
          spec: {
            hostNetwork: boolean;
            hostPID?: boolean;
            automountServiceAccountToken?: boolean;
            containers: Container[];
            volumes: { name: string; hostPath?: { path: string } }[];
          };
        };
      };
    };
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.hostPID ?? false).toBe(false);
    expect(pod.automountServiceAccountToken).toBe(false); // reads nothing from the API
    const volumes = new Set(pod.volumes.map((v) => v.name));
    const hostPaths = pod.volumes.map((v) => v.hostPath?.path);
    for (const p of [
      '/run/netns',
      '/var/lib/tapwire',
      '/run/tapwire',
      '/opt/cni/bin',
      '/etc/cni/net.d',
      '/dev/net/tun',
      '/run/containerd', // tapwire-cri --backend: containerd's socket
    ])
      expect(hostPaths).toContain(p);
    const cm = one('ConfigMap');
    for (const c of pod.containers) {
      for (const m of c.volumeMounts ?? []) expect(volumes, `${c.name} mounts ${m.name}`).toContain(m.name);
      for (const e of c.envFrom ?? []) expect(e.configMapRef?.name).toBe(cm.metadata.name);
      // Bidirectional propagation is only allowed in a privileged container
      if (c.volumeMounts?.some((m) => m.mountPropagation === 'Bidirectional'))
        expect(c.securityContext?.privileged).toBe(true);
    }
    const tm = pod.containers.find((c) => c.name === 'tapmanager')!;
    const annotations = ds.spec.template.metadata.annotations;
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(tm.ports?.map((p) => p.containerPort)).toContain(Number(annotations['prometheus.io/port']));
    expect(cm.metadata.namespace).toBe(ds.metadata.namespace);
  });
});
