// A reply built from its request (RFC 2131 4.3.1 table 3): the reply copies xid, flags,
// giaddr and chaddr, echoes the client identifier (RFC 6842) and the relay agent
// information (RFC 3046 2.2); the caller adds the rest.
import { OP_BOOTREPLY, Opt } from './constants';
import { MessageTypeOption } from './options';
import { DhcpPacket, NO_FILE, NO_SNAME } from './packet';

// What every reply shares instead of allocating its own (the server makes one per OFFER
// and ACK): the empty sname and file (packet.ts; a lease's boot file replaces the
// reference, nothing writes into them) and option 53's value per type, an own allocation
// (not a pool slice: it lives as long as the process).
const TYPE_VALUES: readonly Buffer[] = Array.from({ length: 9 }, (_, t) => {
  const b = Buffer.alloc(1);
  b[0] = t;
  return b;
});

/** The reply to req of message type `type` (table 3's copied fields and echoed options), nothing else set. */
export function replyOf(req: DhcpPacket, type: number): DhcpPacket {
  const p = new DhcpPacket({ chaddr: req.chaddr, sname: NO_SNAME, file: NO_FILE });
  p.op = OP_BOOTREPLY;
  p.htype = req.htype;
  p.hlen = req.hlen;
  p.xid = req.xid;
  p.flags = req.flags;
  p.giaddr = req.giaddr;
  p.options.set(Opt.MESSAGE_TYPE, TYPE_VALUES[type] ?? new MessageTypeOption(type).encode());
  const cid = req.options.get(Opt.CLIENT_ID);
  if (cid) p.options.set(Opt.CLIENT_ID, cid);
  const relay = req.options.get(Opt.RELAY_AGENT_INFO);
  if (relay) p.options.set(Opt.RELAY_AGENT_INFO, relay);
  return p;
}
