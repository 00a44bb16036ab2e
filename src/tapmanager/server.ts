// tapmanager's two Unix sockets. The control socket (0600, root peers only) takes
// setup/teardown/status/list/revoke. The fd socket (0666) takes only `fds`, from peers
// whose SO_PEERCRED uid or gid is allowed and who present the sandbox's token; its reply
// frame carries the tap fds (SCM_RIGHTS). Every peer may be hostile: a refused peer gets
// one short error frame and is closed at once; admitted peers are counted per uid
// (conn-limits.ts) and bounded per connection (connection.ts); a malformed request gets
// an error reply; nothing a peer does kills the daemon.
// Control requests on one connection run concurrently (tapwire-cri keeps a single
// connection; the manager serializes per sandbox, replies carry the request id and may
// come back out of order); fd requests are answered one at a time, in order.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { peerCred } from '../native';
import type { Logger } from '../util/log';
import { ConnLimits, DEFAULT_CONN_LIMITS, type ConnLimitOptions } from './conn-limits';
import { RateLimiter } from '../util/rate-limit';
import { Connection, refuse, socketFd, type ConnectionOptions, type Handler } from './connection';
import { TapError } from './errors';
import { quote } from '../util/quote';
import { clearStaleSocket } from '../util/unix-socket';
import { FD_MAX_FRAME, MAX_CONTROL_QUEUED, MAX_FRAME } from './protocol';
import { boundStatus, listPage, listPaging, wholeList } from './reply-bounds';
import type { TapwireMetrics } from './metrics';
import type { SandboxManager } from './sandboxes';

export interface ServerOptions {
  controlSocket: string;
  fdSocket: string;
  /** uids and gids allowed on the fd socket (root is always allowed) */
  fdAllowUids: number[];
  fdAllowGids: number[];
  log: Logger;
  /** connection caps per uid and in total (DEFAULT_CONN_LIMITS) */
  limits?: Partial<ConnLimitOptions>;
  /** a begun frame must be whole within this (default 10 s) */
  frameTimeoutMs?: number;
  /** fd-socket connections with nothing in flight are closed after this (default 30 s) */
  idleTimeoutMs?: number;
  /** counts operations, fd hand-outs and refusals; serves `stats` */
  metrics?: TapwireMetrics;
}

export const DEFAULT_FRAME_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

interface Cred {
  pid: number;
  uid: number;
  gid: number;
}

async function listen(
  socketPath: string,
  mode: number,
  onConn: (c: net.Socket) => void,
  onError: (e: NodeJS.ErrnoException) => void,
): Promise<net.Server> {
  await fs.promises.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  await clearStaleSocket(socketPath); // never a live daemon's: a second one started by mistake stops here
  const server = net.createServer(onConn);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // accept() can fail (EMFILE when out of fds: libuv then drops the connection): the
  // server goes on
  server.on('error', onError);
  await fs.promises.chmod(socketPath, mode);
  return server;
}

export class TapmanagerServer {
  private servers: net.Server[] = [];
  /** open connections: close() ends them, or a client that keeps one open would hold up a stop forever */
  private readonly conns = new Map<net.Socket, Connection>();
  private readonly limits: ConnLimits;
  /** what peers can make the server log: one line per kind per 10 s, with the count left out */
  private readonly logLimit = new RateLimiter({ burst: 1, intervalMs: 10_000 });
  private sweeper: NodeJS.Timeout | undefined;
  private readonly frameTimeoutMs: number;
  private readonly idleTimeoutMs: number;

  constructor(
    private readonly mgr: SandboxManager,
    private readonly o: ServerOptions,
  ) {
    this.limits = new ConnLimits({ ...DEFAULT_CONN_LIMITS, ...o.limits });
    this.frameTimeoutMs = o.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS;
    this.idleTimeoutMs = o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  }

  async start(): Promise<void> {
    const acceptFailed = (socket: string) => (e: NodeJS.ErrnoException) =>
      this.warnLimited(`accept:${socket}`, 'accept failed', { socket, code: e.code });
    const control = await listen(
      this.o.controlSocket,
      0o600,
      (conn) =>
        this.accept(conn, 'control', (cred) => cred.uid === 0, {
          maxFrame: MAX_FRAME,
          frameTimeoutMs: this.frameTimeoutMs,
          idleTimeoutMs: 0, // root's own, and tapwire-cri keeps one open between requests
          maxQueued: MAX_CONTROL_QUEUED,
          concurrent: true,
        }),
      acceptFailed('control'),
    );
    const fdsrv = await listen(
      this.o.fdSocket,
      0o666,
      (conn) =>
        this.accept(
          conn,
          'fd',
          (cred) => cred.uid === 0 || this.o.fdAllowUids.includes(cred.uid) || this.o.fdAllowGids.includes(cred.gid),
          {
            maxFrame: FD_MAX_FRAME,
            frameTimeoutMs: this.frameTimeoutMs,
            idleTimeoutMs: this.idleTimeoutMs,
            maxQueued: 8,
            concurrent: false,
          },
        ),
      acceptFailed('fd'),
    );
    this.servers = [control, fdsrv];
    const every = Math.max(20, Math.min(1000, Math.min(this.frameTimeoutMs, this.idleTimeoutMs) / 4));
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const c of this.conns.values()) c.sweep(now);
    }, every);
    this.sweeper.unref();
  }

  /** Admits or refuses one accepted connection. */
  private accept(
    conn: net.Socket,
    socket: 'control' | 'fd',
    allowed: (cred: Cred) => boolean,
    opts: ConnectionOptions,
  ): void {
    const log = this.o.log.child(socket);
    // first of all: a peer that resets the connection must never find no listener
    conn.on('error', (e: NodeJS.ErrnoException) => log.debug('connection error', { code: e.code }));
    const cred = safePeerCred(conn);
    if (!cred || !allowed(cred)) {
      const who = cred ? `uid ${cred.uid} gid ${cred.gid}` : 'a peer without credentials';
      const why = socket === 'control' ? 'control socket: root only' : `fd socket: ${who} not allowed`;
      this.warnLimited(`refused:${socket}`, `${socket} socket: peer refused`, {
        uid: cred?.uid,
        gid: cred?.gid,
        pid: cred?.pid,
      });
      if (socket === 'fd') this.o.metrics?.fdRefused('peer_not_allowed');
      refuse(conn, 0, { code: 'EACCES', message: why });
      return;
    }
    const full = this.limits.admit(cred.uid);
    if (full !== undefined) {
      log.debug('connection refused, too many', { uid: cred.uid, pid: cred.pid }); // each one (TAPWIRE_DEBUG)
      this.warnLimited(`full:${socket}`, `${socket} socket: connection refused, too many`, {
        uid: cred.uid,
        pid: cred.pid,
        reason: full,
      });
      if (socket === 'fd') this.o.metrics?.fdRefused('too_many_connections');
      refuse(conn, 0, { code: 'EAGAIN', message: `${socket} socket: ${full}` });
      return;
    }
    const handler: Handler = socket === 'control' ? (msg) => this.control(msg) : (msg) => this.fds(msg, cred);
    this.conns.set(conn, new Connection(conn, log, handler, opts));
    conn.on('close', () => {
      this.conns.delete(conn);
      this.limits.release(cred.uid);
    });
  }

  private async fds(msg: Record<string, unknown>, cred: Cred): Promise<{ result: unknown; fds: number[] }> {
    if (msg.op !== 'fds') throw new TapError('EINVAL', `fd socket serves only "fds", not ${quote(msg.op)}`, 'op');
    const { result, fds } = await this.mgr.fds(msg.key).catch((error: unknown) => {
      this.o.metrics?.fdRefused({ error });
      throw error;
    });
    this.o.metrics?.fdHandedOut();
    this.o.log.info('fds handed out', { sandboxId: result.sandboxId, pid: cred.pid, uid: cred.uid, count: fds.length });
    return { result, fds };
  }

  private async control(msg: Record<string, unknown>): Promise<{ result: unknown }> {
    switch (msg.op) {
      case 'setup':
        return { result: await this.observe('setup', msg.sandboxId, () => this.mgr.setup(msg)) };
      case 'teardown':
        return { result: await this.observe('teardown', msg.sandboxId, () => this.mgr.teardown(msg.sandboxId)) };
      case 'stats':
        if (!this.o.metrics) throw new TapError('ENOTSUP', 'this daemon keeps no metrics', 'op');
        return { result: { metrics: await this.o.metrics.nodeJson() } };
      case 'status':
        return { result: boundStatus(await this.mgr.status(msg.sandboxId)) };
      case 'list': {
        const paging = listPaging(msg);
        const all = this.mgr.list();
        return { result: paging ? listPage(all, paging.limit, paging.after) : wholeList(all) };
      }
      case 'revoke':
        return { result: await this.mgr.revoke(msg.sandboxId) };
      default:
        throw new TapError('EINVAL', `unknown op ${quote(msg.op)}`, 'op');
    }
  }

  private observe<T>(op: 'setup' | 'teardown', sandboxId: unknown, fn: () => Promise<T>): Promise<T> {
    return this.o.metrics ? this.o.metrics.observe(op, sandboxId, fn) : fn();
  }

  /** A warning a peer can cause, rate-limited by kind (a fixed set); says how many were left out. */
  private warnLimited(kind: string, msg: string, fields: Record<string, unknown>): void {
    const suppressed = this.logLimit.take(kind);
    if (suppressed !== undefined) this.o.log.warn(msg, suppressed ? { ...fields, suppressed } : fields);
  }

  /** Connections held per uid and in total (non-root), for tests and logs. */
  connections(): { total: number; byUid: Record<number, number> } {
    return this.limits.counts();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const closed = Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
    for (const c of this.conns.keys()) c.destroy();
    await closed;
    this.servers = [];
  }
}

function safePeerCred(conn: net.Socket): Cred | undefined {
  try {
    return peerCred(socketFd(conn));
  } catch {
    return undefined;
  }
}
