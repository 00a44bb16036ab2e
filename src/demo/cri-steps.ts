// The CRI steps both demos take (standalone, and in front of containerd): version and
// status, tapctl, the pod's stop and removal (a step, and the undo when a later step
// fails), and the check that nothing is left.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RuntimeCalls } from './cri-client';
import type { DemoContext } from './proxy';

/** CRI Version and Status, shown. */
export function versionStep(c: DemoContext, rt: RuntimeCalls, title: string): Promise<void> {
  return c.steps.run(title, async () => {
    const v = await rt.Version!({ version: 'v1' });
    const st = await rt.Status!({ verbose: false });
    const conds = (st.status?.conditions ?? []) as { type: string; status: boolean }[];
    c.steps.show(`runtime ${v.runtimeName} ${v.runtimeVersion} (CRI ${v.runtimeApiVersion})`);
    c.steps.show(conds.map((x) => `${x.type}=${x.status}`).join('  '));
  });
}

/** tapctl against the demo's tapmanager (its control socket). */
export function tapctl(c: DemoContext, control: string, ...args: string[]): string {
  return c.sh(process.execPath, [path.join(c.dist, 'tapmanager', 'tapctl.js'), '--socket', control, ...args]);
}

/** The demo's pod sandbox: once made, stopped and removed on the way out unless a step removed it. */
export class DemoPod {
  id = '';

  constructor(
    private readonly c: DemoContext,
    private readonly rt: RuntimeCalls,
  ) {}

  made(id: string): void {
    this.id = id;
    this.c.undo(`remove sandbox ${id}`, () => this.remove());
    this.c.steps.show(`sandbox id ${id}`);
  }

  async remove(): Promise<void> {
    if (!this.id) return;
    await this.rt.StopPodSandbox!({ podSandboxId: this.id });
    await this.rt.RemovePodSandbox!({ podSandboxId: this.id });
    this.id = '';
  }

  removeStep(title: string): Promise<void> {
    return this.c.steps.run(title, () => this.remove());
  }
}

export interface LeftOver {
  /** what is counted, e.g. "host-local leases" */
  what: string;
  count: number;
}

/**
 * The last step: no CRI sandbox, no tapmanager sandbox, no pinned netns in netnsDir, and
 * none of `more` (each counted when the step runs); `note` is shown after the counts.
 */
export function nothingLeftStep(
  c: DemoContext,
  rt: RuntimeCalls,
  o: { control: string; netnsDir: string; more: () => LeftOver[]; note?: () => string },
): Promise<void> {
  return c.steps.run('check that nothing is left', async () => {
    const list = await rt.ListPodSandbox!({});
    const tap = JSON.parse(tapctl(c, o.control, 'list', '--json')) as unknown[];
    const counts: LeftOver[] = [
      { what: 'pinned netns', count: fs.existsSync(o.netnsDir) ? fs.readdirSync(o.netnsDir).length : 0 },
      ...o.more(),
    ];
    c.steps.show(`CRI sandboxes: ${list.items.length}   tapmanager sandboxes: ${tap.length}`);
    c.steps.show(counts.map((l) => `${l.what}: ${l.count}`).join('   '));
    if (o.note) c.steps.show(o.note());
    if (list.items.length || tap.length || counts.some((l) => l.count)) throw new Error('something was left behind');
  });
}
