// The sandboxes a manager knows: their records (in memory and in the store), the netns
// each one claims, and the lock that serializes operations on one sandbox (different
// sandboxes proceed in parallel).
import { NetnsClaims } from '../netns-claims';
import type { SandboxRecord } from '../record';
import type { RecordStore } from '../store';
import { KeyedLock } from '../../util/keyed-lock';

export class SandboxRegistry {
  readonly records = new Map<string, SandboxRecord>();
  /** one sandbox per netns, the host's and the daemon's own never */
  readonly claims = new NetnsClaims();
  private readonly locks = new KeyedLock();

  constructor(private readonly store: RecordStore) {}

  /** Serializes fn behind every earlier operation on the same sandbox. */
  serialize<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(id, fn);
  }

  /** The record is gone for good: from memory, from disk, and its netns claim. */
  async forget(sandboxId: string): Promise<void> {
    this.records.delete(sandboxId);
    await this.store.remove(sandboxId);
    this.claims.release(sandboxId);
  }
}
