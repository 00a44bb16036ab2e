// CNI configuration the priv tests write: a bridge-plugin network list with host-local
// addresses, a NetworkAttachmentDefinition file (as tapwire-cri's
// --network-attachments-dir reads it), and the netns names a test's SandboxService pins.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { uniqueName } from './names';

/**
 * The bridge plugin (isGateway) on `bridge`, host-local addresses from subnet with their
 * leases under ipamDir (and `routes` when given), then `extra` plugins.
 */
export function bridgeConflist(
  name: string,
  bridge: string,
  subnet: string,
  ipamDir: string,
  o: { routes?: { dst: string }[]; extra?: unknown[] } = {},
): object {
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [
      {
        type: 'bridge',
        bridge,
        isGateway: true,
        ipam: { type: 'host-local', subnet, dataDir: ipamDir, ...(o.routes ? { routes: o.routes } : {}) },
      },
      ...(o.extra ?? []),
    ],
  };
}

/** A NetworkAttachmentDefinition of `config` as JSON at dir/<namespace>/<name>.json. */
export function writeNad(dir: string, namespace: string, name: string, config: unknown): void {
  fs.mkdirSync(path.join(dir, namespace), { recursive: true });
  fs.writeFileSync(
    path.join(dir, namespace, `${name}.json`),
    JSON.stringify({
      apiVersion: 'k8s.cni.cncf.io/v1',
      kind: 'NetworkAttachmentDefinition',
      metadata: { name, namespace },
      spec: { config: JSON.stringify(config) },
    }),
  );
}

/** A SandboxService's netnsName: test-unique names in /run/netns, each path pushed onto pinned (for the cleanup). */
export function pinnedNetnsNames(pinned: string[]): () => string {
  return () => {
    const name = uniqueName('cri');
    pinned.push(`/run/netns/${name}`);
    return name;
  };
}
