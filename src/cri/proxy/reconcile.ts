// Restart reconciliation of VM pods: what the proxy's records, the backend's sandboxes and
// tapmanager's records say, and what to do where they disagree (vm-pods.ts carries it out).
// The proxy's records name its VM pods (vm-store.ts); the lists are taken tapmanager first,
// then the backend, so a sandbox tapmanager has was already in the backend when the backend
// was listed (RunPodSandbox makes the backend's sandbox before tapmanager's setup) and a
// tapmanager record is never taken for an orphan while its pod is being made.
// A running sandbox that carries the proxy's vm-pod mark but has no record of the proxy's is
// a VM pod whose RunPodSandbox ended (tapwire-cri stopped) between the backend making it and
// the proxy writing its record: it is adopted (record, then set up like a repair). A pass
// that overlaps a RunPodSandbox of a VM pod leaves adoption to the next pass (vm-pods.ts).

export type ReconcileAction =
  /** a VM pod the backend no longer has: tapmanager teardown, unpin, forget the record */
  | { kind: 'gone'; id: string }
  /** a VM pod the backend stopped behind the proxy's back: tapmanager teardown, unpin */
  | { kind: 'stopped'; id: string }
  /** a running VM pod tapmanager has no record for: set it up again */
  | { kind: 'repair'; id: string }
  /** a tapmanager record of no VM pod the proxy knows and no sandbox the backend has: teardown, unpin */
  | { kind: 'orphan'; id: string }
  /** a running sandbox with the proxy's mark and no record of the proxy's: record it, set it up */
  | { kind: 'adopt'; id: string };

export interface ReconcileView {
  /** the proxy's VM pods */
  records: Iterable<string>;
  /** the backend's sandboxes: ready or not, marked as the proxy's VM pods or not */
  backend: ReadonlyMap<string, { ready: boolean; marked?: boolean }>;
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
  for (const [id, sb] of view.backend) {
    if (sb.marked && sb.ready && !known.has(id)) out.push({ kind: 'adopt', id });
  }
  return out;
}
