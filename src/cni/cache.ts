// The on-disk cache of what ADD did, like libcni's: one file per network + container id
// + interface, holding the config list used and the final result, so a DEL after a
// restart runs the same plugins with the same prevResult.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CniResult } from './result';
import { writeFileAtomic } from '../util/atomic-file';
import type { CapabilityArgs } from './args';
import type { NetworkConfigList } from './config';

export const CACHE_KIND = 'tapwire-cni-cache/v1';

export interface CacheEntry {
  kind: typeof CACHE_KIND;
  networkName: string;
  containerId: string;
  ifName: string;
  cniArgs: string;
  capabilityArgs: CapabilityArgs;
  config: NetworkConfigList;
  /** Absent while ADD is running or after it failed. */
  result?: CniResult;
}

const SAFE = /^[A-Za-z0-9_.-]+$/;

export class ResultCache {
  constructor(readonly dir: string) {}

  file(networkName: string, containerId: string, ifName: string): string {
    for (const [k, v] of Object.entries({ networkName, containerId, ifName })) {
      if (!SAFE.test(v))
        throw new TypeError(`CNI cache key ${k} ${JSON.stringify(v)} has characters outside [A-Za-z0-9_.-]`);
    }
    return path.join(this.dir, `${networkName}-${containerId}-${ifName}`);
  }

  async get(networkName: string, containerId: string, ifName: string): Promise<CacheEntry | undefined> {
    let text: string;
    try {
      text = await fs.promises.readFile(this.file(networkName, containerId, ifName), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const v = JSON.parse(text) as CacheEntry;
    if (v.kind !== CACHE_KIND) throw new Error(`CNI cache file for ${containerId} has kind ${JSON.stringify(v.kind)}`);
    return v;
  }

  async put(entry: CacheEntry): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file(entry.networkName, entry.containerId, entry.ifName), JSON.stringify(entry));
  }

  async remove(networkName: string, containerId: string, ifName: string): Promise<void> {
    await fs.promises.rm(this.file(networkName, containerId, ifName), { force: true });
  }
}
