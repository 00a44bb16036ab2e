// A client connection as the gRPC server sees it: a Duplex over the Unix socket whose inbound
// bytes go through an AuthorityRewriter (see authority.ts) and whose outbound bytes pass as they
// are. A connection the rewriter cannot follow is closed; no peer's behaviour throws or emits
// an error out of here.
import { Duplex } from 'node:stream';
import type * as net from 'node:net';
import type { Logger } from '../util/log';
import { AuthorityRewriter } from './authority';

export class RewritingSocket extends Duplex {
  private readonly rewriter = new AuthorityRewriter();
  private logged = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly log: Logger,
  ) {
    super();
    socket.on('data', (chunk: Buffer) => this.fromClient(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (e) => this.log.debug('CRI connection error', { error: e.message }));
    socket.on('close', () => this.destroy());
  }

  private fromClient(chunk: Buffer): void {
    let out: Buffer[];
    try {
      out = this.rewriter.push(chunk);
    } catch (e) {
      this.log.warn('closing a CRI connection', { error: (e as Error).message });
      this.destroy();
      return;
    }
    if (this.rewriter.rewritten && !this.logged) {
      this.log.debug('serving a client that sends a path as :authority (as "localhost")');
      this.logged = true;
    }
    for (const b of out) if (!this.push(b)) this.socket.pause();
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    // A write to a socket the client has closed fails; 'close' ends this side too.
    this.socket.write(chunk, () => done());
  }

  override _final(done: () => void): void {
    this.socket.end();
    done();
  }

  override _destroy(_e: Error | null, done: (e: Error | null) => void): void {
    this.socket.destroy();
    done(null);
  }
}
