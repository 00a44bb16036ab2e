// Orphan links at start: a bridge or tap marked "tapwire:<scope>:<sandboxId>" with this
// manager's scope (link-mark.ts) whose sandbox has no record is deleted, a log line each. Looked for in every
// netns a record references and in every netns pinned in the given dirs (/run/netns,
// tapwire-cri's dir). A link without the mark, or of another kind, is never touched;
// nor is a marked link whose sandbox has a record (wherever that record points).
// In a netns no record references, the fence table goes too once an orphan was found
// there, and so does the NAT table of a masquerade bridge deleted there, forwarding put back
// as the table's comment says its setup found it (bindings/masquerade/forwarding.ts). The
// veth a bridge held is left as it is (released, stripped): without the record there is
// no snapshot to restore it from.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NetlinkHandle } from '../net/netlink';
import { liveNetnsKey } from '../net/netns';
import type { Logger } from '../util/log';
import { masqTable } from './bindings/masquerade/cidr';
import { restoreFromComments } from './bindings/masquerade/forwarding';
import { natComment, removeNat } from './bindings/masquerade/nat';
import { fenceExists, removeFence } from './fence';
import { markedSandbox } from './link-mark';

const ORPHAN_KINDS = new Set(['bridge', 'tun', 'macvtap']);

export interface OrphanScan {
  /** dirs of pinned netns files to look through */
  netnsDirs: string[];
  /** every record still held: sandbox id and netns path */
  records: { sandboxId: string; netnsPath: string; fenceTable: string }[];
  fenceTable: string;
  /** this manager's mark scope: links of other scopes are never touched */
  scope: string;
  log: Logger;
  /** told each orphan that could not be removed (metrics) */
  onError?: (e: unknown) => void;
}

export interface OrphanLink {
  netnsPath: string;
  name: string;
  kind: string;
  sandboxId: string;
}

function pinned(dir: string): string[] {
  try {
    return fs.readdirSync(dir).map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}

/** Deletes orphan links; returns what was deleted. Never throws: failures are logged. */
export async function collectOrphanLinks(o: OrphanScan): Promise<OrphanLink[]> {
  const owned = new Set(o.records.map((r) => r.sandboxId));
  const recordNs = new Set(o.records.map((r) => liveNetnsKey(r.netnsPath)).filter((i) => i !== undefined));
  const seen = new Set<string>();
  const deleted: OrphanLink[] = [];
  for (const netnsPath of [...o.records.map((r) => r.netnsPath), ...o.netnsDirs.flatMap(pinned)]) {
    const ino = liveNetnsKey(netnsPath);
    if (ino === undefined || seen.has(ino)) continue;
    seen.add(ino);
    let nl: NetlinkHandle;
    try {
      nl = NetlinkHandle.open(netnsPath);
    } catch (e) {
      o.log.warn('orphan scan: cannot enter netns', { netnsPath, error: (e as Error).message });
      continue;
    }
    let found = 0;
    try {
      for (const l of await nl.links()) {
        const sandboxId = markedSandbox(l.alias, o.scope);
        if (sandboxId === undefined || owned.has(sandboxId) || !ORPHAN_KINDS.has(l.kind ?? '')) continue;
        found++;
        try {
          await nl.deleteLink(l.index, l.name);
          deleted.push({ netnsPath, name: l.name, kind: l.kind!, sandboxId });
          o.log.warn('orphan link: no record owns it; deleted', { netnsPath, link: l.name, kind: l.kind, sandboxId });
        } catch (e) {
          o.log.error('orphan link: cannot delete it', { netnsPath, link: l.name, error: (e as Error).message });
          o.onError?.(e);
        }
      }
    } catch (e) {
      o.log.warn('orphan scan: cannot list links', { netnsPath, error: (e as Error).message });
    } finally {
      nl.close();
    }
    if (found > 0 && !recordNs.has(ino) && (await fenceExists(netnsPath, o.fenceTable).catch(() => false))) {
      await removeFence(netnsPath, o.fenceTable).then(
        () => o.log.warn('orphan fence: no record references this netns; removed', { netnsPath, table: o.fenceTable }),
        (e: unknown) => {
          o.log.error('orphan fence: cannot remove it', { netnsPath, error: (e as Error).message });
          o.onError?.(e);
        },
      );
    }
    // a masquerade NIC's NAT table is named for its bridge (bindings/masquerade)
    if (found > 0 && !recordNs.has(ino)) {
      for (const d of deleted.filter((x) => x.netnsPath === netnsPath && x.kind === 'bridge')) {
        const table = masqTable(d.name);
        // what the setup found of forwarding, from the tables' comments (no record to say it)
        const [c4, c6] = await Promise.all([
          natComment(netnsPath, table, 4).catch(() => undefined),
          natComment(netnsPath, table, 6).catch(() => undefined),
        ]);
        const removed = await removeNat(netnsPath, table).then(
          () => true,
          (e: unknown) => {
            o.log.error('orphan NAT table: cannot remove it', { netnsPath, error: (e as Error).message });
            o.onError?.(e);
            return false;
          },
        );
        if (!removed) continue;
        try {
          const restored = restoreFromComments(netnsPath, c4, c6);
          if (restored.length)
            o.log.warn('orphan NAT table: forwarding put back as its setup found it', { netnsPath, table, restored });
        } catch (e) {
          o.log.error('orphan NAT table: cannot put forwarding back', { netnsPath, error: (e as Error).message });
        }
      }
    }
  }
  return deleted;
}
