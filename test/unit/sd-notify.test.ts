import { describe, expect, it } from 'vitest';
import { SdNotifier } from '../../src/util/sd-notify';

describe('SdNotifier', () => {
  it('takes WATCHDOG_USEC only when it is meant for this process', () => {
    expect(new SdNotifier({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000' }, undefined, 7).watchdogUsec).toBe(3e7);
    expect(new SdNotifier({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, undefined, 7).watchdogUsec).toBe(3e7);
    expect(new SdNotifier({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '8' }, undefined, 7).watchdogUsec).toBeUndefined();
    for (const bad of ['', '0', '-5', '1.5', 'x'])
      expect(new SdNotifier({ WATCHDOG_USEC: bad }, undefined, 7).watchdogUsec).toBeUndefined();
  });

  it('is a no-op without NOTIFY_SOCKET, and a failed send is reported once, never thrown', () => {
    const off = new SdNotifier({});
    expect(off.enabled).toBe(false);
    off.ready('x');
    off.stopping();
    const errors: Error[] = [];
    const gone = new SdNotifier({ NOTIFY_SOCKET: '/nonexistent/notify.sock' }, (e) => errors.push(e));
    gone.ready('serving');
    gone.status('other');
    gone.stopping();
    expect(errors).toHaveLength(1);
    expect(gone.failures).toBe(3);
  });
});
