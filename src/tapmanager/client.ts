// A client for tapmanager's control socket: one connection, requests pipelined by id.
// list() follows the daemon's pages (ListRequest), so any number of sandboxes lists.
import * as net from 'node:net';
import {
  DEFAULT_CONTROL_SOCKET,
  encodeFrame,
  ErrorBody,
  FrameDecoder,
  ListEntry,
  ListPage,
  PROTOCOL_VERSION,
  Reply,
  SetupRequest,
  SetupResult,
} from './protocol';

/**
 * An error reply from tapmanager, or a transport failure (`transport`: the socket missing,
 * refusing, closed, no answer in time, a reply that is no frame; code ENOENT,
 * ECONNREFUSED, EPIPE, ETIMEDOUT ...): an ENOENT reply and a missing socket differ there.
 */
export class TapmanagerError extends Error {
  readonly code: string;
  readonly field?: string;
  constructor(
    body: ErrorBody,
    readonly transport = false,
  ) {
    super(body.message);
    this.name = 'TapmanagerError';
    this.code = body.code;
    if (body.field !== undefined) this.field = body.field;
  }
}

/** tapmanager's own answer that it has no such sandbox (not a missing control socket). */
export function isNoSuchSandbox(e: unknown): boolean {
  return e instanceof TapmanagerError && !e.transport && e.code === 'ENOENT';
}

/** tapmanager could not be reached at all: its control socket missing or refusing. */
export function isUnreachable(e: unknown): boolean {
  return e instanceof TapmanagerError && e.transport && (e.code === 'ENOENT' || e.code === 'ECONNREFUSED');
}

/** What the CRI service and tapctl need from tapmanager. */
export interface TapmanagerApi {
  setup(req: Omit<SetupRequest, 'op'>): Promise<SetupResult>;
  teardown(sandboxId: string): Promise<{ errors: string[] }>;
  status(sandboxId: string): Promise<unknown>;
  list(): Promise<unknown[]>;
}

/**
 * Requests a client keeps unanswered at once; the rest wait their turn here. The daemon
 * closes a control connection that has more (MAX_CONTROL_QUEUED), and with it every
 * request on it: one burst (a CRI client's thousand PodSandboxStatus calls) would fail
 * them all, a RunPodSandbox's setup among them.
 */
export const MAX_IN_FLIGHT = 256;

export class TapmanagerClient implements TapmanagerApi {
  private sock: net.Socket | undefined;
  private nextId = 1;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  /** requests owed a reply, with the connection each was written to */
  private readonly pending = new Map<
    number,
    { sock: net.Socket; resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();

  constructor(
    readonly socketPath: string = DEFAULT_CONTROL_SOCKET,
    private readonly timeoutMs = 60_000,
    /** sandboxes per list page (the daemon may send fewer, to fit a frame) */
    private readonly listPageSize = 1000,
  ) {}

  setup(req: Omit<SetupRequest, 'op'>): Promise<SetupResult> {
    return this.call({ op: 'setup', ...req }) as Promise<SetupResult>;
  }

  teardown(sandboxId: string): Promise<{ errors: string[] }> {
    return this.call({ op: 'teardown', sandboxId }) as Promise<{ errors: string[] }>;
  }

  status(sandboxId: string): Promise<unknown> {
    return this.call({ op: 'status', sandboxId });
  }

  async list(): Promise<ListEntry[]> {
    const all: ListEntry[] = [];
    let after: string | undefined;
    for (;;) {
      const page = (await this.call({ op: 'list', limit: this.listPageSize, ...(after ? { after } : {}) })) as
        ListPage | ListEntry[];
      if (Array.isArray(page)) return page; // a daemon from before paging: the whole list
      all.push(...page.sandboxes);
      if (page.next === undefined) return all;
      after = page.next;
    }
  }

  /** Detaches whoever holds the sandbox's taps, so that the next fds fetch works. */
  revoke(sandboxId: string): Promise<{ sandboxId: string; revoked: { tap: string; attached: number }[] }> {
    return this.call({ op: 'revoke', sandboxId }) as Promise<{
      sandboxId: string;
      revoked: { tap: string; attached: number }[];
    }>;
  }

  /** The node-wide metrics, as the daemon's Prometheus endpoint has them (prom-client JSON). */
  stats(): Promise<{ metrics: StatsMetric[] }> {
    return this.call({ op: 'stats' }) as Promise<{ metrics: StatsMetric[] }>;
  }

  close(): void {
    this.sock?.destroy();
    this.sock = undefined;
  }

  /** Sends one request and resolves with its result, or rejects with a TapmanagerError. */
  async call(body: Record<string, unknown>): Promise<unknown> {
    if (this.inFlight >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inFlight++;
    try {
      return await this.send(body);
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  private send(body: Record<string, unknown>): Promise<unknown> {
    const id = this.nextId++;
    let frame: Buffer;
    try {
      frame = encodeFrame({ v: PROTOCOL_VERSION, id, ...body });
    } catch (e) {
      return Promise.reject(new TapmanagerError({ code: 'E2BIG', message: (e as Error).message }, true));
    }
    const sock = this.connect();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new TapmanagerError(
            {
              code: 'ETIMEDOUT',
              message: `tapmanager did not answer ${String(body.op)} in ${this.timeoutMs} ms`,
            },
            true,
          ),
        );
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(id, {
        sock,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      sock.ref(); // keep the process alive while a reply is owed
      sock.write(frame);
    });
  }

  private connect(): net.Socket {
    if (this.sock && !this.sock.destroyed) return this.sock;
    const sock = net.createConnection(this.socketPath);
    const decoder = new FrameDecoder();
    sock.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        this.failAll(sock, new TapmanagerError({ code: 'EPROTO', message: (e as Error).message }, true));
        sock.destroy();
        return;
      }
      for (const f of frames) {
        const reply = f as Reply;
        // id 0: about the connection, not a request (refused, a bound passed): it closes next
        if (reply.id === 0 && !reply.ok) {
          // the daemon closes this connection next: no later call may be written to it
          this.retire(sock);
          this.failAll(sock, new TapmanagerError(reply.error));
          continue;
        }
        const p = this.pending.get(reply.id);
        if (!p || p.sock !== sock) continue;
        this.pending.delete(reply.id);
        if (![...this.pending.values()].some((q) => q.sock === sock)) sock.unref();
        if (reply.ok) p.resolve(reply.result);
        else p.reject(new TapmanagerError(reply.error));
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      this.failAll(
        sock,
        new TapmanagerError(
          {
            code: e.code ?? 'EIO',
            message: `tapmanager control socket ${this.socketPath}: ${e.message}`,
          },
          true,
        ),
      );
    });
    sock.on('end', () => this.retire(sock));
    sock.on('close', () => {
      this.failAll(sock, new TapmanagerError({ code: 'EPIPE', message: `tapmanager closed ${this.socketPath}` }, true));
      if (this.sock === sock) this.sock = undefined;
    });
    sock.unref();
    this.sock = sock;
    return sock;
  }

  /** Takes a connection the daemon is closing out of use; the next call connects anew. */
  private retire(sock: net.Socket): void {
    if (this.sock === sock) this.sock = undefined;
    sock.end();
  }

  /** Rejects every request written to `sock` (one that closed or failed); others are not its. */
  private failAll(sock: net.Socket, e: Error): void {
    for (const [id, p] of this.pending) {
      if (p.sock !== sock) continue;
      this.pending.delete(id);
      p.reject(e);
    }
  }
}

/** One metric of a `stats` reply (prom-client's getMetricsAsJSON shape). */
export interface StatsMetric {
  name: string;
  help: string;
  type: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}
