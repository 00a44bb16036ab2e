// The DHCPv6 server's state machine (RFC 8415 18.3), free of sockets: a decoded client
// message in, a reply (or nothing) out, binding state updated. One server serves one
// guest NIC (its bridge holds only the guest's tap; the fence keeps the pod network's
// DHCPv6 off it), so there is one lease and whichever client on the link asks gets it;
// bindings are per (client DUID, IAID), capped, the newest kept. Expiry is never timed.
import { MessageType, Opt6, Status } from './constants';
import type { Dhcp6Counters } from './counters';
import type { ResolvedLease6 } from './lease';
import { Dhcp6Message } from './message';
import { DuidOption, IaAddrOption, IaOption, IaTaOption, StatusCodeOption, UintOption } from './options';
import type { Logger } from '../util/log';
import type { RateLimiter } from '../util/rate-limit';

export type Lease6State = 'bound' | 'released' | 'declined';

export interface Binding6 {
  clientDuid: Buffer;
  iaid: number;
  state: Lease6State;
  /** ms since the epoch */
  boundAt: number;
  expiresAt: number;
}

export interface Handler6Context {
  /** option 2's value: stable for the bridge's life (see server.ts) */
  serverDuid: Buffer;
  lease: ResolvedLease6;
  /** key: client DUID hex + '/' + IAID */
  bindings: Map<string, Binding6>;
  counters: Dhcp6Counters;
  log: Logger;
  logLimit?: RateLimiter;
  /** answer a SOLICIT carrying Rapid Commit with a committing REPLY (RFC 8415 18.3.1) */
  rapidCommit: boolean;
  now: () => number;
}

/** More bindings than this on one guest's link is a hostile client churning DUIDs. */
export const MAX_BINDINGS = 8;

/** As dhcp/handler's guestLog: lines a guest causes are rate limited, the rest counted. */
function guestLog(
  ctx: Handler6Context,
  kind: string,
  level: 'info' | 'warn',
  msg: string,
  fields: Record<string, unknown>,
): void {
  const suppressed = ctx.logLimit ? ctx.logLimit.take(`v6-${kind}`) : 0;
  if (suppressed === undefined) {
    ctx.counters.logLinesSuppressed++;
    return;
  }
  ctx.log[level](msg, suppressed > 0 ? { ...fields, suppressed } : fields);
}

const key = (duid: Buffer, iaid: number): string => `${duid.toString('hex')}/${iaid}`;

function status(code: number, message: string): Buffer {
  return new StatusCodeOption(code, message).encode();
}

function answer(ctx: Handler6Context, req: Dhcp6Message, type: number): Dhcp6Message {
  const reply = new Dhcp6Message(type, req.xid);
  const client = req.raw(Opt6.CLIENTID);
  if (client) reply.add(Opt6.CLIENTID, client);
  reply.add(Opt6.SERVERID, ctx.serverDuid);
  return reply;
}

/** DNS (23) and the search list (24), RFC 3646: sent whenever the lease has them. */
function addConfig(ctx: Handler6Context, reply: Dhcp6Message): void {
  if (ctx.lease.dns) reply.add(Opt6.DNS_SERVERS, ctx.lease.dns);
  if (ctx.lease.search) reply.add(Opt6.DOMAIN_LIST, ctx.lease.search);
}

function ourAddress(ctx: Handler6Context, a: IaAddrOption): boolean {
  const b = a.bytes;
  return ctx.lease.addressBytes.some((x) => x.equals(b));
}

/** The IA_NA handing out the lease's addresses, plus any the client named that are not ours at lifetime 0. */
function leasedIa(ctx: Handler6Context, ia: IaOption): IaOption {
  const l = ctx.lease;
  // the lease's options are encoded once (lease.ts) and only copied into the reply
  const opts = l.iaAddrs.map((value) => ({ code: Opt6.IAADDR, value }));
  for (const a of ia.addresses) {
    if (!ourAddress(ctx, a)) opts.push({ code: Opt6.IAADDR, value: new IaAddrOption(a.bytes, 0, 0).encode() });
  }
  return new IaOption(Opt6.IA_NA, ia.iaid, l.t1, l.t2, opts);
}

function failedIa(ctx: Handler6Context, code: number, iaid: number, st: number, why: string): Buffer {
  if (st === Status.NO_BINDING) ctx.counters.noBinding++;
  else ctx.counters.noAddrsAvail++;
  const opts = [{ code: Opt6.STATUS_CODE, value: status(st, why) }];
  if (code === Opt6.IA_TA) return new IaTaOption(iaid, opts).encode();
  return new IaOption(code, iaid, 0, 0, opts).encode();
}

function bind(ctx: Handler6Context, clientDuid: Buffer, iaid: number, kind: string): void {
  const now = ctx.now();
  const k = key(clientDuid, iaid);
  const prev = ctx.bindings.get(k);
  ctx.bindings.delete(k); // re-inserted last: the map's order is the eviction order
  ctx.bindings.set(k, {
    clientDuid, // the decoded message's own copy (options/wire.ts readOptions), no view of a socket buffer
    iaid,
    state: 'bound',
    boundAt: now,
    expiresAt: now + ctx.lease.leaseTime * 1000,
  });
  while (ctx.bindings.size > MAX_BINDINGS) ctx.bindings.delete(ctx.bindings.keys().next().value!);
  // a renewal is a debug line without the DUID's text: made for every renewal, read by no one
  if (prev?.state !== 'bound' || prev.expiresAt <= now) {
    const client = new DuidOption(clientDuid).toString();
    guestLog(ctx, 'bound', 'info', 'IPv6 lease bound', { client, iaid, addresses: ctx.lease.addresses, kind });
  } else ctx.log.debug('IPv6 lease bound', { iaid, kind });
}

function liveBinding(ctx: Handler6Context, clientDuid: Buffer, iaid: number): Binding6 | undefined {
  const b = ctx.bindings.get(key(clientDuid, iaid));
  return b && b.state === 'bound' && b.expiresAt > ctx.now() ? b : undefined;
}

/**
 * The IAs of a SOLICIT/REQUEST (RFC 8415 18.3.1-2): the lease goes into one IA_NA (the one
 * this client has bound, else the first); any other IA_NA and every IA_TA get NoAddrsAvail,
 * every IA_PD NoPrefixAvail. Returns the IA_NA's IAID that got the addresses.
 */
function assign(ctx: Handler6Context, req: Dhcp6Message, reply: Dhcp6Message, clientDuid: Buffer): number | undefined {
  const nas = req.all(Opt6.IA_NA, IaOption);
  const chosen = nas.find((ia) => liveBinding(ctx, clientDuid, ia.iaid)) ?? nas[0];
  for (const ia of nas) {
    if (ia === chosen) reply.add(Opt6.IA_NA, leasedIa(ctx, ia));
    else reply.add(Opt6.IA_NA, failedIa(ctx, Opt6.IA_NA, ia.iaid, Status.NO_ADDRS_AVAIL, 'one address set per guest'));
  }
  for (const ia of req.all(Opt6.IA_TA, IaTaOption)) {
    reply.add(Opt6.IA_TA, failedIa(ctx, Opt6.IA_TA, ia.iaid, Status.NO_ADDRS_AVAIL, 'no temporary addresses'));
  }
  for (const ia of req.all(Opt6.IA_PD, IaOption)) {
    reply.add(Opt6.IA_PD, failedIa(ctx, Opt6.IA_PD, ia.iaid, Status.NO_PREFIX_AVAIL, 'no prefix delegation'));
  }
  return chosen?.iaid;
}

/** RFC 8415 16: which messages must and must not carry a Client / Server Identifier. */
function valid(ctx: Handler6Context, req: Dhcp6Message): boolean {
  const c = ctx.counters;
  const hasClient = req.has(Opt6.CLIENTID);
  const server = req.raw(Opt6.SERVERID);
  const t = req.type;
  const needServer =
    t === MessageType.REQUEST || t === MessageType.RENEW || t === MessageType.RELEASE || t === MessageType.DECLINE;
  const noServer = t === MessageType.SOLICIT || t === MessageType.CONFIRM || t === MessageType.REBIND;
  if ((t !== MessageType.INFORMATION_REQUEST && !hasClient) || (needServer && !server) || (noServer && server)) {
    c.invalid++;
    return false;
  }
  if (server && !server.equals(ctx.serverDuid)) {
    c.otherServer++;
    return false;
  }
  return true;
}

/** Handles one decoded message; returns the reply to send, if any. */
export function handleMessage6(ctx: Handler6Context, req: Dhcp6Message): Dhcp6Message | undefined {
  const c = ctx.counters;
  const t = req.type;
  if (
    t !== MessageType.SOLICIT &&
    t !== MessageType.REQUEST &&
    t !== MessageType.CONFIRM &&
    t !== MessageType.RENEW &&
    t !== MessageType.REBIND &&
    t !== MessageType.RELEASE &&
    t !== MessageType.DECLINE &&
    t !== MessageType.INFORMATION_REQUEST
  ) {
    c.unexpected++;
    return undefined;
  }
  if (!valid(ctx, req)) return undefined;
  const clientDuid = req.raw(Opt6.CLIENTID);
  switch (t) {
    case MessageType.SOLICIT: {
      c.solicit++;
      const commit = ctx.rapidCommit && req.has(Opt6.RAPID_COMMIT);
      const reply = answer(ctx, req, commit ? MessageType.REPLY : MessageType.ADVERTISE);
      if (commit) reply.add(Opt6.RAPID_COMMIT, Buffer.alloc(0));
      else reply.add(Opt6.PREFERENCE, new UintOption(1, 255)); // 255: the client need not wait for others (18.2.1)
      const iaid = assign(ctx, req, reply, clientDuid!);
      if (commit && iaid !== undefined) bind(ctx, clientDuid!, iaid, 'rapid-commit');
      addConfig(ctx, reply);
      if (commit) c.reply++;
      else c.advertise++;
      return reply;
    }
    case MessageType.REQUEST: {
      c.request++;
      const reply = answer(ctx, req, MessageType.REPLY);
      const iaid = assign(ctx, req, reply, clientDuid!);
      if (iaid !== undefined) bind(ctx, clientDuid!, iaid, 'request');
      addConfig(ctx, reply);
      c.reply++;
      return reply;
    }
    case MessageType.CONFIRM: {
      // 18.3.3: NotOnLink if any address is not for this link; no addresses at all: no reply
      c.confirm++;
      const addrs = req.all(Opt6.IA_NA, IaOption).flatMap((ia) => ia.addresses);
      if (addrs.length === 0) return undefined;
      const ok = addrs.every((a) => ourAddress(ctx, a));
      const reply = answer(ctx, req, MessageType.REPLY);
      if (ok) reply.add(Opt6.STATUS_CODE, status(Status.SUCCESS, 'all addresses are on link'));
      else {
        c.notOnLink++;
        reply.add(Opt6.STATUS_CODE, status(Status.NOT_ON_LINK, 'an address is not for this link'));
      }
      c.reply++;
      return reply;
    }
    case MessageType.RENEW:
    case MessageType.REBIND: {
      const rebind = t === MessageType.REBIND;
      if (rebind) c.rebind++;
      else c.renew++;
      const reply = answer(ctx, req, MessageType.REPLY);
      for (const ia of req.all(Opt6.IA_NA, IaOption)) {
        // 18.3.4: RENEW of an IA without a binding gets NoBinding (the client then sends a
        // REQUEST). 18.3.5: a REBIND reaches any server, so one whose addresses are all this
        // link's (say after a daemon restart lost the binding) is bound again; one naming
        // other addresses gets them back at lifetime 0 (and ours), so the client drops them.
        const known = liveBinding(ctx, clientDuid!, ia.iaid);
        const named = ia.addresses;
        if (known || (rebind && named.length > 0)) {
          reply.add(Opt6.IA_NA, leasedIa(ctx, ia));
          if (known || named.every((a) => ourAddress(ctx, a)))
            bind(ctx, clientDuid!, ia.iaid, rebind ? 'rebind' : 'renew');
        } else {
          reply.add(Opt6.IA_NA, failedIa(ctx, Opt6.IA_NA, ia.iaid, Status.NO_BINDING, 'no binding for this IA'));
          guestLog(ctx, 'no-binding', 'info', 'IPv6 renew without binding', { iaid: ia.iaid, type: t });
        }
      }
      for (const ia of req.all(Opt6.IA_PD, IaOption)) {
        reply.add(Opt6.IA_PD, failedIa(ctx, Opt6.IA_PD, ia.iaid, Status.NO_BINDING, 'no binding for this IA'));
      }
      addConfig(ctx, reply);
      c.reply++;
      return reply;
    }
    case MessageType.RELEASE:
    case MessageType.DECLINE: {
      // 18.3.7-8: drop (or mark declined) each IA's binding; NoBinding for unknown IAs;
      // Success at the top level either way.
      const decline = t === MessageType.DECLINE;
      if (decline) c.decline++;
      else c.release++;
      const reply = answer(ctx, req, MessageType.REPLY);
      reply.add(Opt6.STATUS_CODE, status(Status.SUCCESS, decline ? 'declined' : 'released'));
      for (const ia of req.all(Opt6.IA_NA, IaOption)) {
        const b = liveBinding(ctx, clientDuid!, ia.iaid);
        if (!b) {
          reply.add(Opt6.IA_NA, failedIa(ctx, Opt6.IA_NA, ia.iaid, Status.NO_BINDING, 'no binding for this IA'));
          continue;
        }
        b.state = decline ? 'declined' : 'released';
        guestLog(
          ctx,
          decline ? 'decline' : 'release',
          decline ? 'warn' : 'info',
          decline ? 'IPv6 address declined' : 'IPv6 lease released',
          {
            client: new DuidOption(clientDuid!).toString(),
            iaid: ia.iaid,
            addresses: ia.addresses.map((a) => a.address),
          },
        );
      }
      c.reply++;
      return reply;
    }
    default: {
      // INFORMATION-REQUEST (18.3.6); one carrying an IA is discarded (16.12)
      c.informationRequest++;
      if (req.has(Opt6.IA_NA) || req.has(Opt6.IA_TA) || req.has(Opt6.IA_PD)) {
        c.invalid++;
        return undefined;
      }
      const reply = answer(ctx, req, MessageType.REPLY);
      addConfig(ctx, reply);
      c.reply++;
      return reply;
    }
  }
}
