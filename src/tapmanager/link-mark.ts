// The mark tapwire puts on every bridge and tap it creates: IFLA_IFALIAS
// "tapwire:<scope>:<sandboxId>", where scope is 8 hex digits of the SHA-256 of the
// record dir's absolute path, so a manager only ever claims links made by a manager
// with the same state dir (tests run many). Recovery deletes marked links of its own
// scope whose sandbox has no record; a link without the mark is never deleted by it.
import { createHash } from 'node:crypto';
import * as path from 'node:path';

const PREFIX = 'tapwire:';

/**
 * The IFLA_GROUP of every bridge and tap tapwire creates ("tapw"), so a teardown can
 * delete a sandbox's links in one batch (NetlinkHandle.deleteGroup) after checking that
 * the group holds nothing else.
 */
export const LINK_GROUP = 0x74617077;

export function markScope(recordDir: string): string {
  return createHash('sha256').update(path.resolve(recordDir)).digest('hex').slice(0, 8);
}

export function linkMark(scope: string, sandboxId: string): string {
  return `${PREFIX}${scope}:${sandboxId}`;
}

/** The sandbox id a link's alias marks it for in this scope, or undefined if the link is not ours. */
export function markedSandbox(alias: string | undefined, scope: string): string | undefined {
  const head = `${PREFIX}${scope}:`;
  if (!alias?.startsWith(head)) return undefined;
  const id = alias.slice(head.length);
  return id.length > 0 ? id : undefined;
}
