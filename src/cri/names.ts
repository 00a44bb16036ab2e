// Sandbox name reservations, as containerd's CRI plugin keeps them: one sandbox per pod
// (name, namespace, uid, attempt). A name is reserved before RunPodSandbox does anything and
// held while the sandbox's record exists; a run that fails and rolls back releases it, and so
// does RemovePodSandbox. A duplicate - concurrent or later - is refused at once, naming the
// sandbox that holds the name, so a kubelet retry never builds a second sandbox.
import { status as Status } from '@grpc/grpc-js';
import { CriError } from './errors';
import type { SandboxRecord } from './record';

type Metadata = SandboxRecord['metadata'];

/** containerd's sandbox name: name_namespace_uid_attempt. */
export function sandboxName(m: Metadata): string {
  return [m.name, m.namespace, m.uid, String(m.attempt)].join('_');
}

export class NameIndex {
  /** By an unambiguous key (the joined name is not: the parts may hold '_'). */
  private readonly holders = new Map<string, string>();

  private static key(m: Metadata): string {
    return JSON.stringify([m.name, m.namespace, m.uid, m.attempt]);
  }

  /** Reserves the name for id, or throws ALREADY_EXISTS naming the sandbox that holds it. */
  reserve(m: Metadata, id: string): void {
    const key = NameIndex.key(m);
    const holder = this.holders.get(key);
    if (holder !== undefined && holder !== id) {
      const name = sandboxName(m);
      throw new CriError(
        Status.ALREADY_EXISTS,
        `failed to reserve sandbox name ${JSON.stringify(name)}: name ${JSON.stringify(name)} ` +
          `is reserved for ${JSON.stringify(holder)}`,
      );
    }
    this.holders.set(key, id);
  }

  /** Releases the name if id holds it (a later holder's reservation is left alone). */
  release(m: Metadata, id: string): void {
    const key = NameIndex.key(m);
    if (this.holders.get(key) === id) this.holders.delete(key);
  }

  holder(m: Metadata): string | undefined {
    return this.holders.get(NameIndex.key(m));
  }
}
