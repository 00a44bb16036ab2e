// What the proxy keeps about a VM pod, one small JSON file per sandbox under
// STATE_DIR/vm-pods (written atomically): the network key tapmanager gave at setup (needed for
// every CreateContainer of the pod, also after a restart of tapwire-cri) and the netns pin.
// These records are what the proxy knows its VM pods by (a client's annotations never make
// one); the backend's vm-pod mark only shows the same pods from the backend's side.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v from 'valibot';
import { writeFileAtomic } from '../../util/atomic-file';
import type { VmNetworkState } from '../vm-network';

/** Who the pod is, as tapmanager's setup got it (a repair sets it up the same way). */
export interface VmPodIdentity {
  hostname?: string;
  podName?: string;
  podNamespace?: string;
  dns?: { servers: string[]; searches: string[]; options: string[] };
}

export interface VmPodRecord {
  v: 1;
  id: string;
  netKey: string;
  netnsPath: string;
  createdAt: string;
  pod?: VmPodIdentity;
  /** the pod's VM network spec and its extra networks (written by tapwire-cri itself) */
  vmNetwork?: VmNetworkState;
}

const strings = v.array(v.string());

const Record = v.object({
  v: v.literal(1),
  id: v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/)),
  netKey: v.string(),
  netnsPath: v.string(),
  createdAt: v.string(),
  pod: v.optional(
    v.object({
      hostname: v.optional(v.string()),
      podName: v.optional(v.string()),
      podNamespace: v.optional(v.string()),
      dns: v.optional(v.object({ servers: strings, searches: strings, options: strings })),
    }),
  ),
  // a checked spec and CNI results tapwire-cri wrote itself: its shape is checked, not each field again
  vmNetwork: v.optional(
    v.custom<VmNetworkState>(
      (x) =>
        typeof x === 'object' &&
        x !== null &&
        typeof (x as VmNetworkState).spec === 'object' &&
        Array.isArray((x as VmNetworkState).extras),
      'is not a VM network state',
    ),
  ),
});

export class VmPodStore {
  constructor(readonly dir: string) {}

  private file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  async write(rec: VmPodRecord): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file(rec.id), JSON.stringify(rec), { durable: false });
  }

  async remove(id: string): Promise<void> {
    await fs.promises.rm(this.file(id), { force: true });
  }

  /** Every record; a file that is not one is reported, not loaded. */
  async loadAll(): Promise<{ records: VmPodRecord[]; errors: string[] }> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], errors: [] };
      throw e;
    }
    const records: VmPodRecord[] = [];
    const errors: string[] = [];
    for (const n of names.filter((f) => f.endsWith('.json'))) {
      try {
        const rec = v.parse(Record, JSON.parse(await fs.promises.readFile(path.join(this.dir, n), 'utf8')));
        if (`${rec.id}.json` !== n) throw new Error(`its id is ${JSON.stringify(rec.id)}`);
        records.push(rec);
      } catch (e) {
        errors.push(`${path.join(this.dir, n)}: ${(e as Error).message}`);
      }
    }
    return { records, errors };
  }
}
