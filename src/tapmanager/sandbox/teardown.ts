// A teardown: record the intent, undo everything, forget the sandbox. Idempotent.
import { step, type ManagerContext } from './context';
import { unbuild } from './unbuild';

export async function doTeardown(ctx: ManagerContext, sandboxId: string): Promise<{ errors: string[] }> {
  const rec = ctx.registry.records.get(sandboxId);
  if (!rec) return { errors: [] }; // idempotent: never set up, or already torn down
  rec.state = 'tearing-down';
  await ctx.o.store.save(rec);
  await step(ctx, 'teardown.recorded', sandboxId);
  const undone = await unbuild(ctx, rec, undefined, 'teardown');
  const errors = undone.map((e) => e.message); // the reply's shape: one line per failed step
  if (errors.length === 0) {
    await ctx.registry.forget(sandboxId);
    ctx.drift.delete(sandboxId);
    ctx.o.log.info('sandbox torn down', { sandboxId });
  } else {
    ctx.o.log.error('teardown finished with errors; record kept', { sandboxId, errors });
  }
  return { errors };
}
