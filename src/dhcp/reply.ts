// Replies built from their request with modifiers (RFC 2131 4.3.1 table 3): the reply
// copies xid, flags, giaddr and chaddr, echoes the client identifier (RFC 6842) and the
// relay agent information (RFC 3046 2.2); the caller adds the rest.
import { OP_BOOTREPLY, Opt } from './constants';
import { MessageTypeOption, type OptionValue } from './options';
import { DhcpPacket } from './packet';

export type Modifier = (p: DhcpPacket) => void;

export function replyTo(req: DhcpPacket, ...mods: Modifier[]): DhcpPacket {
  const p = new DhcpPacket();
  p.op = OP_BOOTREPLY;
  p.htype = req.htype;
  p.hlen = req.hlen;
  p.xid = req.xid;
  p.flags = req.flags;
  p.giaddr = req.giaddr;
  p.chaddr = req.chaddr;
  const cid = req.options.get(Opt.CLIENT_ID);
  if (cid) p.options.set(Opt.CLIENT_ID, cid);
  const relay = req.options.get(Opt.RELAY_AGENT_INFO);
  if (relay) p.options.set(Opt.RELAY_AGENT_INFO, relay);
  for (const m of mods) m(p);
  return p;
}

export const withMessageType =
  (t: number): Modifier =>
  (p) =>
    p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(t));

export const withYourIp =
  (ip: string): Modifier =>
  (p) => {
    p.yiaddr = ip;
  };

export const withClientIp =
  (ip: string): Modifier =>
  (p) => {
    p.ciaddr = ip;
  };

export const withOption =
  (code: number, v: OptionValue | Buffer): Modifier =>
  (p) =>
    p.set(code, v);

export const withoutOption =
  (code: number): Modifier =>
  (p) =>
    p.delete(code);
