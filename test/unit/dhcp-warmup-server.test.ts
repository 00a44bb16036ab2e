// The start-up warm-up's last step: exchanges through a whole DhcpServer on loopback, each
// reply back at the client before the next request; run again by finishDhcpWarmUp at the
// end of a start, after a full collection.
import * as dgram from 'node:dgram';
import { expect, it } from 'vitest';
import { finishDhcpWarmUp, warmUpDhcpServer } from '../../src/dhcp/warmup-server';

it('gets every reply through a loopback server each time it runs, and leaves no socket open', async () => {
  const before = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
  const skipped: string[] = [];
  expect(await warmUpDhcpServer(90, { onSkip: (w) => skipped.push(w) })).toBe(90);
  expect(skipped).toEqual([]);
  expect(await warmUpDhcpServer(90)).toBe(90);
  await finishDhcpWarmUp({ onSkip: (w) => skipped.push(w) });
  expect(skipped).toEqual([]);
  await new Promise((r) => setTimeout(r, 20)); // libuv finishes closing on a later turn
  const after = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  expect(after.filter((h) => h instanceof dgram.Socket)).toEqual([]);
  expect(after.length).toBeLessThanOrEqual(before);
});
