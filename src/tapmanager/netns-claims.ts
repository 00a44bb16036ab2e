// Which network namespace a setup may take. Never the daemon's own nor the host's (PID
// 1's): stripping that namespace's uplink and bridging it cuts the node off. And one
// sandbox per namespace: a second sandbox's build or rollback would take the first's
// links, names and fence. A namespace is known by the device and inode of its nsfs file
// (what stat() of any path to it gives: a bind mount, /proc/PID/ns/net, a symlink to
// either), never by its path.
import { hostNetnsOf, netnsKey } from '../net/netns';
import { TapError, badInput } from './errors';

/**
 * EINVAL naming netnsPath when it is the daemon's own or the host's network namespace;
 * `opened` is where it was opened (netns-pin.ts), when it was.
 */
export function refuseHostNetns(netnsPath: string, opened = netnsPath): void {
  const host = hostNetnsOf(opened);
  if (host) {
    const what = host.path === '/proc/self/ns/net' ? "tapmanager's own network namespace" : host.what;
    throw badInput('netnsPath', netnsPath, `is ${what} (${host.path}), not a pod's: refused`);
  }
}

/**
 * The namespaces held by sandboxes: by a record, or by a setup under way (claimed before
 * it builds anything, so two setups at once cannot both take one namespace).
 */
export class NetnsClaims {
  private readonly byKey = new Map<string, { sandboxId: string; netnsPath: string }>();
  private readonly keyOf = new Map<string, string>();

  /**
   * Claims the namespace at netnsPath for sandboxId; EBUSY naming the holder when
   * another sandbox holds it. A holder whose own path no longer leads to that namespace
   * (it is gone and its inode was reused) holds nothing. `opened`: where netnsPath was
   * opened (netns-pin.ts), when it was.
   */
  claim(sandboxId: string, netnsPath: string, opened = netnsPath): void {
    const key = netnsKey(opened);
    if (key === undefined) throw badInput('netnsPath', netnsPath, 'cannot be opened');
    const held = this.byKey.get(key);
    if (held && held.sandboxId !== sandboxId && netnsKey(held.netnsPath) === key) {
      throw new TapError(
        'EBUSY',
        `netnsPath ${JSON.stringify(netnsPath)} is the network namespace of sandbox ${JSON.stringify(held.sandboxId)} (${held.netnsPath}): one sandbox per namespace`,
        'netnsPath',
      );
    }
    this.release(sandboxId);
    if (held) this.keyOf.delete(held.sandboxId);
    this.byKey.set(key, { sandboxId, netnsPath });
    this.keyOf.set(sandboxId, key);
  }

  release(sandboxId: string): void {
    const key = this.keyOf.get(sandboxId);
    if (key === undefined) return;
    this.keyOf.delete(sandboxId);
    if (this.byKey.get(key)?.sandboxId === sandboxId) this.byKey.delete(key);
  }
}
