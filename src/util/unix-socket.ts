// Making room for a Unix socket a server is about to listen on. A socket file left by a
// server that is gone (a crash, kill -9) is removed; one that a live server still answers
// on is not (unlinking it would leave that server running and unreachable, its clients
// failing with ENOENT); nor is anything that is not a socket. And a path longer than
// sun_path holds is refused: the kernel would bind a cut name somewhere else.
import * as fs from 'node:fs';
import * as net from 'node:net';

/** Longest socket path bind() takes: sun_path (108 bytes) less its NUL. */
export const MAX_SOCKET_PATH = 107;

export class SocketPathError extends Error {
  constructor(
    readonly socketPath: string,
    why: string,
  ) {
    super(`cannot listen on ${JSON.stringify(socketPath)}: ${why}`);
    this.name = 'SocketPathError';
  }
}

/** Resolves true when something accepts a connection at socketPath. */
function answers(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.createConnection(socketPath);
    const done = (live: boolean): void => {
      clearTimeout(timer);
      c.destroy();
      resolve(live);
    };
    const timer = setTimeout(() => done(true), timeoutMs); // a server too busy to accept is still there
    c.once('connect', () => done(true));
    // only "nobody listens" is stale: EAGAIN (a full backlog) is a live server
    c.once('error', (e: NodeJS.ErrnoException) => done(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT'));
  });
}

/**
 * Checks that a server may listen on socketPath: not too long, and nothing there but a
 * stale socket (which is removed). SocketPathError says why not.
 */
export async function clearStaleSocket(socketPath: string): Promise<void> {
  const bytes = Buffer.byteLength(socketPath);
  if (bytes > MAX_SOCKET_PATH)
    throw new SocketPathError(socketPath, `${bytes} bytes, longer than a Unix socket path may be (${MAX_SOCKET_PATH})`);
  let st: fs.Stats;
  try {
    st = await fs.promises.lstat(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) throw new SocketPathError(socketPath, 'it exists and is not a socket');
  if (await answers(socketPath))
    throw new SocketPathError(socketPath, 'another process is serving it (is one already running?)');
  await fs.promises.rm(socketPath, { force: true });
}
