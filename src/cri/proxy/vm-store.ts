// What the proxy keeps about a VM pod, one small JSON file per sandbox under
// STATE_DIR/vm-pods (written atomically): the network key tapmanager gave at setup (needed for
// every CreateContainer of the pod, also after a restart of tapwire-cri) and the netns pin.
// These records are what the proxy knows its VM pods by (a client's annotations never make
// one); the backend's vm-pod mark only shows the same pods from the backend's side.
import * as v from 'valibot';
import { JsonDirStore } from '../../util/json-dir-store';
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
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

const Record = v.object({
  v: v.literal(1),
  id: v.pipe(v.string(), v.regex(ID_RE)),
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
  private readonly files: JsonDirStore<VmPodRecord>;

  constructor(readonly dir: string) {
    this.files = new JsonDirStore(dir, {
      idOf: (rec) => rec.id,
      checkId: (id) => {
        if (!ID_RE.test(id)) throw new TypeError(`VM pod id ${JSON.stringify(id)} cannot name a record file`);
      },
      parse: (value) => v.parse(Record, value),
      format: (rec) => JSON.stringify(rec),
    });
  }

  write(rec: VmPodRecord): Promise<void> {
    return this.files.save(rec);
  }

  remove(id: string): Promise<void> {
    return this.files.remove(id);
  }

  /** Every record; a file that is not one is reported, not loaded. */
  async loadAll(): Promise<{ records: VmPodRecord[]; errors: string[] }> {
    const { records, errors } = await this.files.loadAll();
    return { records, errors: errors.map((e) => `${e.file}: ${e.error.message}`) };
  }
}
