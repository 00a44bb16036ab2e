// The start-up warm-up drives the real message path: every synthetic request gets a reply
// that decodes, and it runs once per process.
import { expect, it } from 'vitest';
import { warmUpDhcp, warmUpDhcpFromSocket } from '../../src/dhcp/warmup';

it('answers every synthetic DISCOVER, REQUEST and renewal, once per process', () => {
  expect(warmUpDhcp(90)).toBe(90);
  expect(warmUpDhcp(90)).toBe(0);
});

it('runs the same rounds on the messages as they arrive through a loopback socket, once per process', async () => {
  expect(await warmUpDhcpFromSocket(90)).toBe(90);
  expect(await warmUpDhcpFromSocket(90)).toBe(0);
});
