import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serveMetrics, TapwireMetrics } from '../../src/tapmanager/metrics';
import { createLogger } from '../../src/util/log';

describe('metrics endpoint', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('serves GET /metrics as Prometheus text; other paths 404, other methods 405; a broken request is dropped', async () => {
    const m = new TapwireMetrics();
    const s = await serveMetrics(m, { host: '127.0.0.1', port: 0 }, createLogger('test'));
    close = s.close;
    const base = `http://127.0.0.1:${s.port}`;
    const ok = await fetch(`${base}/metrics`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    expect(await ok.text()).toMatch(/^tapwire_sandboxes\{state="ready"\} 0$/m);
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status).toBe(405);
    // garbage instead of HTTP: the connection is closed, the server goes on
    const sock = net.connect(s.port, '127.0.0.1');
    sock.write('\x00\x01 not http\r\n\r\n');
    await new Promise((r) => sock.on('close', r));
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
  });
});
