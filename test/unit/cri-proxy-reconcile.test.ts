// What restart reconciliation of VM pods does where the proxy's records, the backend and
// tapmanager disagree (src/cri/proxy/reconcile.ts); carried out against real parts in
// test/priv/cri-proxy-reconcile.test.ts.
import { describe, expect, it } from 'vitest';
import { planReconcile } from '../../src/cri/proxy/reconcile';

const backend = (entries: Record<string, boolean>) =>
  new Map(Object.entries(entries).map(([id, ready]) => [id, { ready }]));

describe('planReconcile', () => {
  it('leaves consistent sides alone', () => {
    expect(
      planReconcile({
        records: ['a', 'b'],
        backend: backend({ a: true, b: false, plain: true }),
        tapmanager: new Set(['a']),
      }),
    ).toEqual([]);
  });

  it('tears down what the backend stopped or lost, repairs what tapmanager lost, cleans orphans', () => {
    expect(
      planReconcile({
        records: ['gone', 'stopped', 'lost'],
        backend: backend({ stopped: false, lost: true, foreign: true }),
        tapmanager: new Set(['gone', 'stopped', 'orphan', 'foreign']),
      }),
    ).toEqual([
      { kind: 'gone', id: 'gone' },
      { kind: 'stopped', id: 'stopped' },
      { kind: 'repair', id: 'lost' },
      { kind: 'orphan', id: 'orphan' },
    ]);
  });

  it('adopts a running sandbox with the vm-pod mark and no record; never an unmarked or stopped one', () => {
    expect(
      planReconcile({
        records: ['known'],
        backend: new Map([
          ['known', { ready: true, marked: true }],
          ['crashed', { ready: true, marked: true }],
          ['stopped', { ready: false, marked: true }],
          ['plain', { ready: true, marked: false }],
        ]),
        tapmanager: new Set(['known']),
      }),
    ).toEqual([{ kind: 'adopt', id: 'crashed' }]);
  });
});
