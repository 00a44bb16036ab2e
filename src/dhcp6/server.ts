// One DHCPv6 server per guest bridge, serving that guest's one static lease. Its socket is
// made in the sandbox's netns by the addon (SO_BINDTODEVICE to the bridge, [::]:547, joined
// to ff02::1:2), so it is listening when start() resolves, and read and written through the
// addon too (sock6Watch/sock6Send), not dgram: libuv names a link-local peer's scope by its
// interface index in the daemon's own netns, where the bridge does not exist, and drops the
// message (ENXIO). Replies go to the client's address and port, from the bridge's
// link-local. Bad input is counted and debug-logged, never thrown out of the socket handler.
//
// The server DUID is DUID-LL of the bridge's MAC (RFC 8415 11.4), not DUID-LLT or DUID-EN:
// the bridge's MAC is chosen once at setup and kept in the sandbox record, so a restarted
// daemon derives the same DUID with nothing more to persist (LLT would need its time stored,
// EN an enterprise number tapwire does not own), and clients renewing after a restart still
// reach "their" server (RFC 8415 11: a server's DUID must not change).
import { sock6Close, sock6Send, sock6Watch, udp6SocketBoundToDevice, withNetns } from '../native';
import { macToBuffer, parseMac } from '../net/mac';
import { silentLogger, type Logger } from '../util/log';
import { RateLimiter } from '../util/rate-limit';
import { CLIENT_PORT, SERVER_PORT } from './constants';
import { newCounters6, type Dhcp6Counters } from './counters';
import { Dhcp6ConfigError, Dhcp6DecodeError } from './errors';
import { handleMessage6, type Handler6Context, type Lease6State } from './handler';
import { resolveLease6, type Dhcp6Lease } from './lease';
import { Dhcp6Message } from './message';
import { DuidOption } from './options';

export type { Dhcp6Lease } from './lease';
export type { Dhcp6Counters } from './counters';

export interface Dhcp6ServerOptions {
  /** the bridge the guest's tap is on */
  ifname: string;
  /** netns path or fd; undefined = the current one */
  netns?: string;
  /** the bridge's MAC: the server DUID is DUID-LL of it */
  serverMac: string;
  lease: Dhcp6Lease;
  /** default true: a SOLICIT with Rapid Commit is answered with a committing REPLY */
  rapidCommit?: boolean;
  /** default 547 */
  port?: number;
  logger?: Logger;
  logLimit?: RateLimiter;
}

export interface Dhcp6BindingStats {
  client: string;
  iaid: number;
  state: Lease6State | 'expired';
  boundAt: string;
  expiresAt: string;
}

export interface Dhcp6ServerStats extends Dhcp6Counters {
  ifname: string;
  serverDuid: string;
  addresses: readonly string[];
  bindings: Dhcp6BindingStats[];
}

export class Dhcp6Server {
  private closed = false;

  private constructor(
    private readonly fd: number,
    private readonly o: Dhcp6ServerOptions,
    private readonly ctx: Handler6Context,
  ) {
    sock6Watch(fd, (msg, from, port) => this.onMessage(msg, from, port));
  }

  static async start(o: Dhcp6ServerOptions): Promise<Dhcp6Server> {
    if (typeof o !== 'object' || o === null) throw new TypeError('Dhcp6Server.start needs an options object');
    if (typeof o.ifname !== 'string' || o.ifname.length === 0 || o.ifname.length > 15) {
      throw new Dhcp6ConfigError('ifname', o.ifname, 'must be an interface name of 1-15 bytes');
    }
    if (parseMac(o.serverMac) === undefined) throw new Dhcp6ConfigError('serverMac', o.serverMac, 'not a MAC address');
    const mac = macToBuffer(o.serverMac);
    const port = o.port ?? SERVER_PORT;
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new Dhcp6ConfigError('port', o.port, 'must be 0..65535');
    const lease = resolveLease6(o.lease);
    const log = o.logger ?? silentLogger;
    const open = (): number => udp6SocketBoundToDevice(o.ifname, port);
    let fd: number;
    try {
      fd = o.netns === undefined ? open() : withNetns(o.netns, open);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const wrapped = new Error(
        `failed to open DHCPv6 socket on "${o.ifname}" port ${port}${o.netns ? ` in netns ${o.netns}` : ''}: ${err.message}`,
      ) as NodeJS.ErrnoException;
      wrapped.code = err.code;
      throw wrapped;
    }
    const ctx: Handler6Context = {
      serverDuid: DuidOption.linkLayer(mac).bytes,
      lease,
      bindings: new Map(),
      counters: newCounters6(),
      log,
      logLimit: o.logLimit ?? new RateLimiter(),
      rapidCommit: o.rapidCommit ?? true,
      now: Date.now,
    };
    log.debug('listening', { ifname: o.ifname, port, addresses: lease.addresses });
    return new Dhcp6Server(fd, o, ctx);
  }

  /** Replaces the lease; bindings stay (their addresses are the lease's, whatever it holds). */
  setLease(lease: Dhcp6Lease): void {
    this.ctx.lease = resolveLease6(lease);
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      sock6Close(this.fd);
    }
    return Promise.resolve();
  }

  stats(): Dhcp6ServerStats {
    const now = this.ctx.now();
    return {
      ifname: this.o.ifname,
      serverDuid: new DuidOption(this.ctx.serverDuid).toString(),
      addresses: this.ctx.lease.addresses,
      ...this.ctx.counters,
      bindings: [...this.ctx.bindings.values()].map((b) => ({
        client: new DuidOption(b.clientDuid).toString(),
        iaid: b.iaid,
        state: b.state === 'bound' && b.expiresAt <= now ? 'expired' : b.state,
        boundAt: new Date(b.boundAt).toISOString(),
        expiresAt: new Date(b.expiresAt).toISOString(),
      })),
    };
  }

  private onMessage(msg: Buffer, from: string, port: number): void {
    const c = this.ctx.counters;
    c.received++;
    try {
      let req: Dhcp6Message;
      try {
        req = Dhcp6Message.decode(msg);
      } catch (e) {
        if (!(e instanceof Dhcp6DecodeError)) throw e;
        if (e.reason === 'relay') c.relay++;
        else c.decodeErrors++;
        this.ctx.log.debug('dropped message', {
          from,
          bytes: msg.length,
          reason: e.reason,
          error: e.message,
        });
        return;
      }
      const reply = handleMessage6(this.ctx, req);
      if (!reply) return;
      // RFC 8415 18.3.10: to the source address and port of the message answered
      try {
        sock6Send(this.fd, from, port || CLIENT_PORT, '::', reply.encode());
      } catch (e) {
        c.sendErrors++;
        this.ctx.log.debug('failed to send DHCPv6 reply', { to: from, code: (e as NodeJS.ErrnoException).code });
      }
    } catch (e) {
      c.internalErrors++;
      this.ctx.log.error('failed to handle DHCPv6 message', { error: e, bytes: msg.length });
    }
  }
}
