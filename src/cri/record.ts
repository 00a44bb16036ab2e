// A sandbox as tapwire-cri keeps it: everything needed to answer status/list after a
// restart and to tear the network down again. One JSON file per sandbox in the state dir,
// written atomically (temp, fsync, rename) after every change.
import * as path from 'node:path';
import type { CniPortMapping, CniDns } from '../cni/args';
import type { CniResult } from '../cni/result';
import type { SetupResult } from '../tapmanager/protocol';
import { JsonDirStore } from '../util/json-dir-store';
import type { VmNetworkState } from './vm-network';

export const RECORD_VERSION = 1;

export type SandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export interface SandboxRecord {
  v: typeof RECORD_VERSION;
  id: string;
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
  hostname: string;
  dns?: CniDns;
  portMappings: CniPortMapping[];
  /** Nanoseconds since the epoch, as a decimal string (CRI int64). */
  createdAt: string;
  state: SandboxState;
  netnsPath: string;
  /** The pod network (CNI config name) and interface, and whether loopback was set up by CNI. */
  network: { name: string; ifName: string; loopback: boolean };
  cniResult?: CniResult;
  /** tapmanager's setup result: the VM network key and the guest NICs. */
  tap?: SetupResult;
  /** the pod's VM network spec and its extra networks (absent: no spec, one NIC on the pod network) */
  vmNetwork?: VmNetworkState;
  /** True once StopPodSandbox (or a rollback) has torn the network down. */
  networkDown: boolean;
  /** Why the sandbox is not ready, when a run failed and could not be fully rolled back. */
  error?: string;
}

const ID_RE = /^[0-9a-f]{64}$/;

export class RecordStore {
  readonly dir: string;
  private readonly files: JsonDirStore<SandboxRecord>;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'sandboxes');
    this.files = new JsonDirStore(this.dir, {
      idOf: (rec) => rec.id,
      checkId: (id) => {
        if (!ID_RE.test(id)) throw new TypeError(`sandbox id ${JSON.stringify(id)} is not 64 hex digits`);
      },
      parse: (value) => {
        const rec = value as SandboxRecord;
        if (rec?.v !== RECORD_VERSION) throw new Error(`unexpected v ${String(rec?.v)}`);
        return rec;
      },
      format: (rec) => `${JSON.stringify(rec, null, 1)}\n`,
      durable: true,
    });
  }

  save(rec: SandboxRecord): Promise<void> {
    return this.files.save(rec);
  }

  remove(id: string): Promise<void> {
    return this.files.remove(id);
  }

  /** Every record on disk; unreadable files are returned as errors, not thrown. */
  async loadAll(): Promise<{ records: SandboxRecord[]; errors: Error[] }> {
    const { records, errors } = await this.files.loadAll();
    return {
      records,
      errors: errors.map((e) => new Error(`failed to load sandbox record "${e.file}": ${e.error.message}`)),
    };
  }
}
