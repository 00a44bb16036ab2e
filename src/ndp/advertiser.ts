// Router advertisements for one guest bridge (RFC 4861 6.2): a raw ICMPv6 socket on the
// bridge (made by the addon in the pod netns), answering each valid Router Solicitation
// (by unicast to the soliciting address) and sending unsolicited advertisements at random
// intervals to ff02::1 on the bridge.
// The fence keeps them off the veth, so only the guest hears them.
//
// Which router the guest learns: the advertisements are sent FROM the link-local address
// of the pod's own IPv6 gateway (the next hop of the pod's default route, or that router's
// link-local when the route names a global address; see tapmanager/plan/guest-ipv6.ts),
// with no source link-layer option. The guest installs "default via <gateway LL>", resolves
// it by NDP, and the real gateway, which sits on the same L2 segment through the bridge and
// the veth, answers and forwards: the pod netns does not route the guest's traffic, holds
// no proxy NDP entries and needs no forwarding sysctls, exactly as the IPv4 bridge binding
// hands the guest the pod's real gateway. Calico's fe80::1 / ecee:eeff:feee:eeee gateways
// are link-local already; the host side answers NDP for them as it did for the pod.
import { icmp6Open, sock6Close, sock6Send, sock6Watch, withNetns } from '../native';
import { silentLogger, type Logger } from '../util/log';
import { encodeRouterAdvert, isValidRouterSolicit, type RouterAdvert } from './messages';

export type { RouterAdvert } from './messages';

const ALL_NODES = 'ff02::1';
/** RFC 4861 6.2.1 defaults for MaxRtrAdvInterval and MinRtrAdvInterval (0.33 x max). */
export const MAX_RTR_ADV_INTERVAL = 600;
const MIN_RTR_ADV_INTERVAL = 200;
/** RFC 4861 10: the first few unsolicited advertisements come faster. */
const MAX_INITIAL_RTR_ADVERT_INTERVAL = 16;
const MAX_INITIAL_RTR_ADVERTISEMENTS = 3;
/** RFC 4861 10: multicast advertisements at most this often (ms). */
const MIN_DELAY_BETWEEN_RAS = 3000;
/** Unicast answers to solicitations, per second. */
const MAX_UNICAST_PER_SECOND = 10;
/** RFC 4861 6.2.1: AdvDefaultLifetime default, 3 x MaxRtrAdvInterval. */
export const DEFAULT_ROUTER_LIFETIME = 3 * MAX_RTR_ADV_INTERVAL;

export interface AdvertiserOptions {
  ifname: string;
  netns?: string;
  /** the link-local address the advertisements come from: the router the guest will use */
  source: string;
  advert: RouterAdvert;
  logger?: Logger;
}

export interface AdvertiserStats {
  solicitations: number;
  /** invalid solicitations (hop limit, code, options): dropped */
  invalid: number;
  /** valid solicitations answered: by unicast at once, or by the multicast advertisement due next */
  answered: number;
  /** valid solicitations past the unicast limit (MAX_UNICAST_PER_SECOND): not answered */
  rateLimited: number;
  /** advertisements sent (answers and the periodic ones) */
  sent: number;
  sendErrors: number;
}

/** Every count at zero. */
export const newAdvertiserStats = (): AdvertiserStats => ({
  solicitations: 0,
  invalid: 0,
  answered: 0,
  rateLimited: 0,
  sent: 0,
  sendErrors: 0,
});

export class RouterAdvertiser {
  private readonly stats_ = newAdvertiserStats();
  private timer?: NodeJS.Timeout;
  private pending?: NodeJS.Timeout;
  private lastSent = 0;
  private unicastWindow = 0;
  private unicastSent = 0;
  private initialLeft = MAX_INITIAL_RTR_ADVERTISEMENTS;
  private packet: Buffer;
  private closed = false;

  private constructor(
    private readonly fd: number,
    private readonly o: AdvertiserOptions,
    private readonly log: Logger,
  ) {
    this.packet = encodeRouterAdvert(o.advert);
    sock6Watch(fd, (data, from, _port, hopLimit) => this.onSolicit(data, from, hopLimit));
  }

  /** Opens the socket, sends the first advertisement now, and schedules the next. */
  static start(o: AdvertiserOptions): RouterAdvertiser {
    const open = (): number => icmp6Open(o.ifname);
    const fd = o.netns === undefined ? open() : withNetns(o.netns, open);
    const a = new RouterAdvertiser(fd, o, o.logger ?? silentLogger);
    a.advertise();
    return a;
  }

  /** Replaces what is advertised and advertises it now. */
  update(advert: RouterAdvert): void {
    this.packet = encodeRouterAdvert(advert);
    this.advertise();
  }

  stats(): AdvertiserStats {
    return { ...this.stats_ };
  }

  /** Sends a final advertisement with router lifetime 0 (RFC 4861 6.2.5) when asked, then closes. */
  close(opts: { withdraw?: boolean } = {}): void {
    if (this.closed) return;
    if (opts.withdraw) {
      this.packet = encodeRouterAdvert({ ...this.o.advert, routerLifetime: 0 });
      this.send();
    }
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.pending);
    sock6Close(this.fd);
  }

  private onSolicit(data: Buffer, from: string, hopLimit: number): void {
    if (this.closed) return;
    if (!isValidRouterSolicit(data, from, hopLimit)) {
      this.stats_.invalid++;
      return;
    }
    this.stats_.solicitations++;
    // RFC 4861 6.2.6: a solicitation from an address may be answered by unicast to it, at
    // once (the guest is booting and waiting); bounded per second so a flood of solicitations
    // cannot make a flood of advertisements. From :: the answer is multicast, at most one per
    // MIN_DELAY_BETWEEN_RAS.
    if (from !== '::') {
      const now = Date.now();
      if (now - this.unicastWindow >= 1000) {
        this.unicastWindow = now;
        this.unicastSent = 0;
      }
      if (this.unicastSent++ < MAX_UNICAST_PER_SECOND) {
        this.stats_.answered++;
        this.send(from);
      } else this.stats_.rateLimited++;
      return;
    }
    this.stats_.answered++;
    if (this.pending) return; // a multicast answer is already on its way
    const wait = Math.max(0, this.lastSent + MIN_DELAY_BETWEEN_RAS - Date.now());
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.advertise();
    }, wait);
    this.pending.unref();
  }

  private advertise(): void {
    if (this.closed) return;
    this.send();
    clearTimeout(this.timer);
    let next = MIN_RTR_ADV_INTERVAL + Math.random() * (MAX_RTR_ADV_INTERVAL - MIN_RTR_ADV_INTERVAL);
    if (this.initialLeft > 0) {
      this.initialLeft--;
      next = Math.min(next, MAX_INITIAL_RTR_ADVERT_INTERVAL);
    }
    this.timer = setTimeout(() => this.advertise(), next * 1000);
    this.timer.unref();
  }

  private send(to = ALL_NODES): void {
    try {
      sock6Send(this.fd, to, 0, this.o.source, this.packet);
      this.stats_.sent++;
      if (to === ALL_NODES) this.lastSent = Date.now();
    } catch (e) {
      this.stats_.sendErrors++;
      this.log.debug('failed to send a router advertisement', { ifname: this.o.ifname, error: e });
    }
  }
}
