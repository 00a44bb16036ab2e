// The loopback warm-up's socket takes only its own datagrams. Any local user can send to a
// port on 127.0.0.1: a datagram that arrived there first was decoded with the rest, threw,
// and tapmanager exited 1 at start-up (review of issue 14). Its own file: the warm-up runs
// once per process.
import * as dgram from 'node:dgram';
import { afterEach, expect, it, vi } from 'vitest';
import { warmUpDhcpFromSocket } from '../../src/dhcp/warmup';

afterEach(() => {
  vi.restoreAllMocks();
});

it('ignores a datagram from another socket that arrives before its own', async () => {
  const intruder = dgram.createSocket('udp4');
  const bind = dgram.Socket.prototype.bind as (this: dgram.Socket, ...a: unknown[]) => dgram.Socket;
  let sent = false;
  vi.spyOn(dgram.Socket.prototype, 'bind').mockImplementation(function (this: dgram.Socket, ...args: unknown[]) {
    if (this === intruder || typeof args.at(-1) !== 'function') return bind.apply(this, args);
    const cb = args.pop() as () => void;
    return bind.call(this, ...args, () => {
      // before the warm-up sends its own: the intruder's garbage is first in its queue
      intruder.send(Buffer.from('\x02garbage'), this.address().port, '127.0.0.1', () => {
        sent = true;
        cb();
      });
    });
  });
  try {
    expect(await warmUpDhcpFromSocket(90)).toBe(90);
    expect(sent).toBe(true);
  } finally {
    intruder.close();
  }
});
