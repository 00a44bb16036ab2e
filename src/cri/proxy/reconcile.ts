// Restart reconciliation of VM pods: what the proxy's records, the backend's sandboxes and
// tapmanager's records say, and what to do where they disagree (vm-pods.ts carries it out).
// The proxy's records name its VM pods (vm-store.ts); the lists are taken tapmanager first,
// then the backend, so a sandbox tapmanager has was already in the backend when the backend
// was listed (RunPodSandbox makes the backend's sandbox before tapmanager's setup) and a
// tapmanager record is never taken for an orphan while its pod is being made.

export type ReconcileAction =
  /** a VM pod the backend no longer has: tapmanager teardown, unpin, forget the record */
  | { kind: 'gone'; id: string }
  /** a VM pod the backend stopped behind the proxy's back: tapmanager teardown, unpin */
  | { kind: 'stopped'; id: string }
  /** a running VM pod tapmanager has no record for: set it up again */
  | { kind: 'repair'; id: string }
  /** a tapmanager record of no VM pod the proxy knows and no sandbox the backend has: teardown, unpin */
  | { kind: 'orphan'; id: string };

export interface ReconcileView {
  /** the proxy's VM pods */
  records: Iterable<string>;
  /** the backend's sandboxes: ready or not */
  backend: ReadonlyMap<string, { ready: boolean }>;
  /** the sandboxes tapmanager has a record for */
  tapmanager: ReadonlySet<string>;
}

export function planReconcile(view: ReconcileView): ReconcileAction[] {
  const out: ReconcileAction[] = [];
  const known = new Set(view.records);
  for (const id of known) {
    const sb = view.backend.get(id);
    if (!sb) out.push({ kind: 'gone', id });
    else if (!sb.ready && view.tapmanager.has(id)) out.push({ kind: 'stopped', id });
    else if (sb.ready && !view.tapmanager.has(id)) out.push({ kind: 'repair', id });
  }
  for (const id of view.tapmanager) {
    if (!known.has(id) && !view.backend.has(id)) out.push({ kind: 'orphan', id });
  }
  return out;
}
