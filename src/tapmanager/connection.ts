// One accepted connection of tapmanager: frames in, requests to a handler, replies out.
// Nothing a peer does ends the daemon: every socket error is handled, a reply is
// framed by encodeReply (which never throws), and the handler's failures become error
// replies. Bounds per connection: a frame no larger than `maxFrame`, a frame begun must
// be whole within `frameTimeoutMs`, a connection with nothing in flight is closed after
// `idleTimeoutMs` (0: never), at most `maxQueued` requests unanswered. A peer past any
// bound gets a short error frame (best effort, never waited for) and is closed at once.
import type * as net from 'node:net';
import { closeFd, sendFds } from '../native';
import type { Logger } from '../util/log';
import { TapError, toErrorBody } from './errors';
import { quote } from '../util/quote';
import { FrameDecoder, MAX_FRAME, PROTOCOL_VERSION, type ErrorBody, type Reply } from './protocol';
import { encodeReply } from './reply-bounds';

/** Reply bytes a connection may leave unread before it is closed. */
const MAX_UNREAD = 4 * MAX_FRAME;

export type Handler = (msg: Record<string, unknown>) => Promise<{ result: unknown; fds?: number[] }>;

export interface ConnectionOptions {
  maxFrame: number;
  frameTimeoutMs: number;
  idleTimeoutMs: number;
  maxQueued: number;
  /** requests run concurrently (control socket); else one at a time, in order */
  concurrent: boolean;
}

/** The fd a net.Socket wraps (for sendmsg with SCM_RIGHTS and SO_PEERCRED). */
export function socketFd(conn: net.Socket): number {
  return (conn as unknown as { _handle: { fd: number } })._handle.fd;
}

/**
 * Writes one error frame if the socket takes it now, then closes the connection at once:
 * for refused peers and peers past a bound. The write goes straight to the kernel when
 * the socket has room (libuv tries it synchronously); what does not fit is dropped.
 */
export function refuse(conn: net.Socket, id: number, error: ErrorBody): void {
  if (!conn.destroyed && conn.writable) conn.write(encodeReply({ v: PROTOCOL_VERSION, id, ok: false, error }));
  conn.destroy();
}

export class Connection {
  private readonly decoder: FrameDecoder;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private lastActive = Date.now();
  private partialSince: number | undefined;

  constructor(
    private readonly conn: net.Socket,
    private readonly log: Logger,
    private readonly handler: Handler,
    private readonly o: ConnectionOptions,
  ) {
    this.decoder = new FrameDecoder(o.maxFrame);
    conn.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Called periodically: closes the connection past the frame or idle timeout. */
  sweep(now: number): void {
    if (this.conn.destroyed) return;
    if (this.partialSince !== undefined && now - this.partialSince > this.o.frameTimeoutMs) {
      this.log.debug('partial frame timed out', { pending: this.decoder.pending });
      const msg = `a frame was begun (${this.decoder.pending} bytes) but not finished within ${this.o.frameTimeoutMs} ms`;
      refuse(this.conn, 0, { code: 'ETIMEDOUT', message: msg });
    } else if (this.o.idleTimeoutMs > 0 && this.queued === 0 && now - this.lastActive > this.o.idleTimeoutMs) {
      refuse(this.conn, 0, { code: 'ETIMEDOUT', message: `idle for ${this.o.idleTimeoutMs} ms: closed` });
    }
  }

  private onData(chunk: Buffer): void {
    if (this.conn.destroyed) return;
    this.lastActive = Date.now();
    let msgs: unknown[];
    try {
      msgs = this.decoder.push(chunk);
    } catch (e) {
      refuse(this.conn, 0, { code: 'EPROTO', message: (e as Error).message });
      return;
    }
    this.partialSince = this.decoder.pending > 0 ? (this.partialSince ?? this.lastActive) : undefined;
    for (const m of msgs) {
      if (this.queued >= this.o.maxQueued) {
        const message = `${this.queued} requests are unanswered on this connection, the most it may have`;
        refuse(this.conn, 0, { code: 'EAGAIN', message });
        return;
      }
      this.queued++;
      const run = (): Promise<void> => this.run(m).finally(() => this.queued--);
      if (this.o.concurrent) void run();
      else this.queue = this.queue.then(run);
    }
  }

  /** Runs one request and replies; never rejects. */
  private async run(m: unknown): Promise<void> {
    const msg = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
    const id = typeof msg.id === 'number' ? msg.id : 0;
    try {
      if (msg.v !== PROTOCOL_VERSION) {
        throw new TapError('EPROTO', `protocol version ${quote(msg.v)} is not ${PROTOCOL_VERSION}`, 'v');
      }
      const { result, fds } = await this.handler(msg);
      try {
        this.reply({ v: PROTOCOL_VERSION, id, ok: true, result }, fds);
      } finally {
        for (const fd of fds ?? []) closeQuietly(fd);
      }
    } catch (e) {
      this.reply({ v: PROTOCOL_VERSION, id, ok: false, error: toErrorBody(e) });
    }
  }

  /** Sends one reply; never throws. */
  private reply(r: Reply, fds?: number[]): void {
    this.lastActive = Date.now();
    if (this.conn.destroyed || !this.conn.writable) return;
    const frame = encodeReply(r);
    if (!fds?.length) {
      this.conn.write(frame);
      // a peer that asks and never reads: its replies pile up here, not without end
      if (this.conn.writableLength > MAX_UNREAD) {
        this.log.warn('peer does not read its replies: closed', { unread: this.conn.writableLength });
        this.conn.destroy();
      }
      return;
    }
    // The frame and its fds go out in one sendmsg; nothing else is queued on this
    // connection (fd requests are answered in order, one at a time).
    try {
      sendFds(socketFd(this.conn), frame, fds);
    } catch (e) {
      this.log.warn('cannot send fds', { error: (e as Error).message });
      this.conn.destroy();
    }
  }
}

function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    /* already closed */
  }
}
