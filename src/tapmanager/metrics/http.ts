// The Prometheus endpoint: GET /metrics (text format 0.0.4) on --metrics-address. Anything
// else is 404/405; scrapes are answered one read at a time (TapwireMetrics.refresh), a
// client that holds a connection open is cut off by the server's timeouts, and at most 32
// connections are open at once.
import * as http from 'node:http';
import type { Logger } from '../../util/log';
import type { MetricsAddress } from './address';
import type { TapwireMetrics } from './registry';

export async function serveMetrics(
  metrics: TapwireMetrics,
  address: MetricsAddress,
  log: Logger,
): Promise<{ server: http.Server; port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '').split('?')[0];
    if (url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    metrics.text().then(
      (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      (e: unknown) => {
        log.error('metrics scrape failed (a bug)', { error: (e as Error).message });
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;
  server.maxConnections = 32; // a scraper needs one; more are closed at accept
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e: NodeJS.ErrnoException) => log.warn('metrics server error', { code: e.code }));
  server.on('clientError', (_e, socket) => socket.destroy());
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
