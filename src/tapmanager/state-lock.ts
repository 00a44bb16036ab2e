// One daemon per state dir. A second tapmanager on the same records (started by mistake,
// with other sockets) would recover every sandbox again: a second DHCP server on each
// bridge, and the rollback of setups the first one is in the middle of. The lock is a
// Unix socket in the state dir that the daemon listens on while it runs: the kernel
// drops it with the process (kill -9 included), a second daemon finds it answering and
// stops, and bind() itself settles two daemons starting at once (EADDRINUSE).
import * as net from 'node:net';
import * as path from 'node:path';
import { clearStaleSocket } from '../util/unix-socket';

export const LOCK_NAME = 'tapmanager.lock';

export class StateDirBusyError extends Error {
  constructor(stateDir: string, why: string) {
    super(`state dir ${JSON.stringify(stateDir)} is in use by another tapmanager (${why}); one daemon per state dir`);
    this.name = 'StateDirBusyError';
  }
}

/** Takes the state dir for this process; close the server to give it back. */
export async function lockStateDir(stateDir: string): Promise<net.Server> {
  const socketPath = path.join(stateDir, LOCK_NAME);
  try {
    await clearStaleSocket(socketPath);
  } catch (e) {
    throw new StateDirBusyError(stateDir, (e as Error).message);
  }
  const server = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new StateDirBusyError(stateDir, `${socketPath} is taken`) : e),
    );
    server.listen(socketPath, () => resolve());
  });
  server.on('error', () => undefined); // accept failures (EMFILE) do not matter here
  server.unref();
  return server;
}
