// tapmanager's two Unix sockets. The control socket (0600, root peers only) takes
// setup/teardown/status/list. The fd socket takes only `fds`, from peers whose
// SO_PEERCRED uid or gid is allowed and who present the sandbox's token; its reply
// frame carries the tap fds (SCM_RIGHTS). A malformed request gets an error reply; an
// oversize or unparsable frame also closes that connection; nothing kills the daemon.
// Control requests on one connection run concurrently (tapwire-cri keeps a single
// connection; the manager serializes per sandbox, replies carry the request id and may
// come back out of order); fd requests are answered one at a time, in order.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { closeFd, peerCred, sendFds } from '../native';
import type { Logger } from '../util/log';
import { TapError, toErrorBody } from './errors';
import { encodeFrame, FrameDecoder, PROTOCOL_VERSION, Reply } from './protocol';
import type { SandboxManager } from './sandboxes';

export interface ServerOptions {
  controlSocket: string;
  fdSocket: string;
  /** uids and gids allowed on the fd socket (root is always allowed) */
  fdAllowUids: number[];
  fdAllowGids: number[];
  log: Logger;
}

function handleFd(conn: net.Socket): number {
  return (conn as unknown as { _handle: { fd: number } })._handle.fd;
}

type Handler = (msg: Record<string, unknown>, conn: net.Socket) => Promise<{ result: unknown; fds?: number[] }>;

function serve(conn: net.Socket, log: Logger, handler: Handler, opts: { concurrent?: boolean } = {}): void {
  const decoder = new FrameDecoder();
  let queue = Promise.resolve();
  const reply = (r: Reply, fds?: number[]): void => {
    if (conn.destroyed) return;
    const frame = encodeFrame(r);
    if (fds && fds.length) {
      // The frame and its fds go out in one sendmsg; nothing else is queued on this
      // connection (requests are answered in order, one at a time).
      try {
        sendFds(handleFd(conn), frame, fds);
      } catch (e) {
        log.warn('cannot send fds', { error: (e as Error).message });
        conn.destroy();
      }
    } else {
      conn.write(frame);
    }
  };
  conn.on('data', (chunk: Buffer) => {
    let msgs: unknown[];
    try {
      msgs = decoder.push(chunk);
    } catch (e) {
      reply({ v: PROTOCOL_VERSION, id: 0, ok: false, error: { code: 'EPROTO', message: (e as Error).message } });
      conn.end();
      return;
    }
    for (const m of msgs) {
      const run = async (): Promise<void> => {
        const msg = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
        const id = typeof msg.id === 'number' ? msg.id : 0;
        try {
          if (msg.v !== PROTOCOL_VERSION) {
            throw new TapError('EPROTO', `protocol version ${JSON.stringify(msg.v)} is not ${PROTOCOL_VERSION}`, 'v');
          }
          const { result, fds } = await handler(msg, conn);
          try {
            reply({ v: PROTOCOL_VERSION, id, ok: true, result }, fds);
          } finally {
            for (const fd of fds ?? []) closeFd(fd);
          }
        } catch (e) {
          reply({ v: PROTOCOL_VERSION, id, ok: false, error: toErrorBody(e) });
        }
      };
      if (opts.concurrent) void run();
      else queue = queue.then(run);
    }
  });
  conn.on('error', (e) => log.debug('connection error', { error: e.message }));
}

async function listen(
  socketPath: string,
  mode: number,
  conns: Set<net.Socket>,
  onConn: (c: net.Socket) => void,
): Promise<net.Server> {
  await fs.promises.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  await fs.promises.rm(socketPath, { force: true });
  const server = net.createServer((conn) => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    onConn(conn);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  await fs.promises.chmod(socketPath, mode);
  return server;
}

export class TapmanagerServer {
  private servers: net.Server[] = [];
  /** open connections: close() ends them, or a client that keeps one open would hold up a stop forever */
  private readonly conns = new Set<net.Socket>();

  constructor(
    private readonly mgr: SandboxManager,
    private readonly o: ServerOptions,
  ) {}

  async start(): Promise<void> {
    const log = this.o.log;
    const control = await listen(this.o.controlSocket, 0o600, this.conns, (conn) => {
      const cred = safePeerCred(conn);
      if (!cred || cred.uid !== 0) {
        conn.end(
          encodeFrame({
            v: PROTOCOL_VERSION,
            id: 0,
            ok: false,
            error: { code: 'EACCES', message: 'control socket: root only' },
          }),
        );
        return;
      }
      serve(conn, log.child('control'), (msg) => this.control(msg), { concurrent: true });
    });
    const fdsrv = await listen(this.o.fdSocket, 0o666, this.conns, (conn) => {
      const cred = safePeerCred(conn);
      const allowed =
        cred !== undefined &&
        (cred.uid === 0 || this.o.fdAllowUids.includes(cred.uid) || this.o.fdAllowGids.includes(cred.gid));
      if (!allowed) {
        log.warn('fd socket: peer refused', { cred });
        conn.end(
          encodeFrame({
            v: PROTOCOL_VERSION,
            id: 0,
            ok: false,
            error: { code: 'EACCES', message: `fd socket: uid ${cred?.uid} gid ${cred?.gid} not allowed` },
          }),
        );
        return;
      }
      serve(conn, log.child('fd'), async (msg) => {
        if (msg.op !== 'fds')
          throw new TapError('EINVAL', `fd socket serves only "fds", not ${JSON.stringify(msg.op)}`, 'op');
        const { result, fds } = this.mgr.fds(msg.key);
        log.info('fds handed out', { sandboxId: result.sandboxId, pid: cred?.pid, uid: cred?.uid, count: fds.length });
        return { result, fds };
      });
    });
    this.servers = [control, fdsrv];
  }

  private async control(msg: Record<string, unknown>): Promise<{ result: unknown }> {
    switch (msg.op) {
      case 'setup':
        return { result: await this.mgr.setup(msg) };
      case 'teardown':
        return { result: await this.mgr.teardown(msg.sandboxId) };
      case 'status':
        return { result: await this.mgr.status(msg.sandboxId) };
      case 'list':
        return { result: this.mgr.list() };
      default:
        throw new TapError('EINVAL', `unknown op ${JSON.stringify(msg.op)}`, 'op');
    }
  }

  async close(): Promise<void> {
    const closed = Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
    for (const c of this.conns) c.destroy();
    await closed;
    this.servers = [];
  }
}

function safePeerCred(conn: net.Socket): { pid: number; uid: number; gid: number } | undefined {
  try {
    return peerCred(handleFd(conn));
  } catch {
    return undefined;
  }
}
