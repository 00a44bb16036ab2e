// The start-up warm-up's last step: exchanges through a whole DhcpServer on loopback, each
// reply back at the client before the next request; once per process (its own file).
import * as dgram from 'node:dgram';
import { expect, it } from 'vitest';
import { warmUpDhcpServer } from '../../src/dhcp/warmup-server';

it('gets every reply through a loopback server, once per process, and leaves no socket open', async () => {
  const before = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
  const skipped: string[] = [];
  expect(await warmUpDhcpServer(90, { onSkip: (w) => skipped.push(w) })).toBe(90);
  expect(skipped).toEqual([]);
  expect(await warmUpDhcpServer(90)).toBe(0);
  await new Promise((r) => setTimeout(r, 20)); // libuv finishes closing on a later turn
  const after = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  expect(after.filter((h) => h instanceof dgram.Socket)).toEqual([]);
  expect(after.length).toBeLessThanOrEqual(before);
});
