// deploy/kubernetes's manifests, read and checked against the Kubernetes API's OpenAPI
// schemas by kubernetes-models (each kind's model validates its object), plus the checks a
// schema cannot make across objects (a mount names a volume, envFrom names the ConfigMap).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const KUBE_DIR = path.resolve(__dirname, '../../deploy/kubernetes');

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [k: string]: unknown;
}

/** Every object of every .yaml file in deploy/kubernetes, with the file it came from. */
export function readManifests(): { file: string; obj: KubeObject }[] {
  const out: { file: string; obj: KubeObject }[] = [];
  for (const file of fs.readdirSync(KUBE_DIR).filter((f) => /\.ya?ml$/.test(f))) {
    for (const doc of parseAllDocuments(fs.readFileSync(path.join(KUBE_DIR, file), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const obj = doc.toJS() as KubeObject | null;
      if (obj) out.push({ file, obj });
    }
  }
  return out;
}

/** Validates obj with the kubernetes-models class of its apiVersion and kind; throws naming what is wrong. */
export async function validateObject(obj: KubeObject): Promise<void> {
  const group = obj.apiVersion.includes('/') ? obj.apiVersion : `v1`;
  // kubernetes-models lays its modules out as <group>/<version>, the core group as v1
  const mod = (await import(`kubernetes-models/${group}`)) as Record<
    string,
    new (o: unknown) => { validate: () => void }
  >;
  const Model = mod[obj.kind];
  if (!Model) throw new Error(`no kubernetes-models class for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}
