// Serving a gRPC server on a Unix socket, for both tapwire-cri modes (standalone and proxy).
// Connections reach the gRPC server through a RewritingSocket, so clients that send the
// socket path as :authority (grpc-go before 1.52) are served as well as those that send
// "localhost".
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Logger } from '../util/log';
import { clearStaleSocket } from '../util/unix-socket';
import { RewritingSocket } from './rewriting-socket';

export interface UnixListener {
  socketPath: string;
  /** Stops accepting, shuts the server down gracefully (forced after graceMs), removes the socket. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Binds socketPath (a stale socket file is replaced, a live one or any other file is an
 * error; mode 0600) and serves `server` on it.
 */
export async function listenUnix(server: grpc.Server, socketPath: string, log: Logger): Promise<UnixListener> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  await clearStaleSocket(socketPath); // a stale socket goes; a live one (another tapwire-cri) stops us
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const listener = net.createServer((socket) => injector.injectConnection(new RewritingSocket(socket, log)));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', (e) => reject(new Error(`failed to listen on "${socketPath}": ${e.message}`)));
    listener.listen(socketPath, () => resolve());
  });
  listener.on('error', (e) => log.error('CRI socket error', { error: e.message }));
  fs.chmodSync(socketPath, 0o600);
  log.info('listening', { socket: socketPath });
  return {
    socketPath,
    close: async (graceMs = 5000) => {
      listener.close();
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        t.unref();
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      fs.rmSync(socketPath, { force: true });
    },
  };
}
