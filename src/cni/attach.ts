// Extra networks for one pod, as Multus attaches them: each network's config list run with
// its own interface name, net1, net2, ... in order; if one fails, the ones before it (and
// its own partial ADD) are deleted again in reverse. Detach deletes in reverse too, every
// one attempted whatever the others did. DEL goes through the result cache, so it works
// after a restart with the config ADD used.
import type { CniResult } from './result';
import type { Attachment, CniRunner } from './network';
import type { NetworkConfigList } from './config';

/** Multus's name for the n-th (0-based) extra network's interface. */
export const extraIfName = (n: number): string => `net${n + 1}`;

export interface AttachedNetwork {
  /** the CNI network name (the config list's) */
  network: string;
  ifName: string;
  result: CniResult;
}

/** What detach needs of an attachment: the CNI network name and the interface. */
export interface AttachmentKey {
  network: string;
  ifName: string;
}

/** One extra network that failed; `attached` lists what is still attached after the rollback. */
export class AttachError extends Error {
  readonly code = 'EATTACH';
  constructor(
    readonly network: string,
    readonly ifName: string,
    cause: unknown,
    /** DEL failures during the rollback: those attachments may be left */
    readonly rollbackErrors: Error[],
  ) {
    super(
      `failed to attach network "${network}" as ${ifName}: ${(cause as Error).message}` +
        (rollbackErrors.length ? `; rollback incomplete: ${rollbackErrors.map((e) => e.message).join('; ')}` : ''),
    );
    this.name = 'AttachError';
  }
}

/**
 * Runs ADD for each list in order with interface names from `ifNames` (default net1, ...).
 * `base` is the attachment without its interface name.
 */
export async function attachNetworks(
  runner: CniRunner,
  lists: NetworkConfigList[],
  base: Omit<Attachment, 'ifName'>,
  ifNames: string[] = lists.map((_, i) => extraIfName(i)),
): Promise<AttachedNetwork[]> {
  const done: AttachedNetwork[] = [];
  for (const [i, list] of lists.entries()) {
    const ifName = ifNames[i]!;
    try {
      done.push({ network: list.name, ifName, result: await runner.add(list, { ...base, ifName }) });
    } catch (e) {
      // its own partial ADD first (the cache holds its config from before the first plugin ran)
      const undo: AttachmentKey[] = [...done, { network: list.name, ifName }];
      const rollbackErrors = await detachNetworks(runner, undo, base);
      throw new AttachError(list.name, ifName, e, rollbackErrors);
    }
  }
  return done;
}

/** DEL for each attachment, last first; every one attempted. Returns the failures. */
export async function detachNetworks(
  runner: CniRunner,
  attached: AttachmentKey[],
  base: Omit<Attachment, 'ifName'>,
): Promise<Error[]> {
  const errors: Error[] = [];
  for (const a of [...attached].reverse()) {
    try {
      await runner.del(a.network, { ...base, ifName: a.ifName });
    } catch (e) {
      errors.push(new Error(`CNI DEL "${a.network}" ${a.ifName}: ${(e as Error).message}`));
    }
  }
  return errors;
}
