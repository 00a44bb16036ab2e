// Where a reply goes (RFC 2131 4.1, "If the 'giaddr' field ..."): to the relay (server
// port) if giaddr is set; NAKs are broadcast; to ciaddr if the client has one; broadcast
// if the client set the broadcast flag; else unicast to yiaddr at chaddr. The last needs
// the kernel to reach a client without an address: the server socket is bound to the
// bridge, so with no route Linux treats the destination as on-link there, and tapmanager
// installs a permanent neighbour entry (yiaddr -> chaddr); if the send still fails the
// server falls back to broadcast.
import { MessageType } from './constants';
import type { DhcpPacket } from './packet';

export const BROADCAST = '255.255.255.255';
const ZERO = '0.0.0.0';

export interface Destination {
  address: string;
  port: number;
  /** unicast to an address-less client: retry as broadcast if the send fails */
  fallbackToBroadcast: boolean;
}

export function replyDestination(
  req: DhcpPacket,
  reply: DhcpPacket,
  serverPort: number,
  clientPort: number,
): Destination {
  return destinationOf(req, reply.messageType === MessageType.NAK, reply.yiaddr, serverPort, clientPort);
}

/** The same from what decides it: whether the reply is a NAK, and its yiaddr. */
export function destinationOf(
  req: DhcpPacket,
  nak: boolean,
  yiaddr: string,
  serverPort: number,
  clientPort: number,
): Destination {
  if (req.giaddr !== ZERO) return { address: req.giaddr, port: serverPort, fallbackToBroadcast: false };
  if (nak) return { address: BROADCAST, port: clientPort, fallbackToBroadcast: false };
  if (req.ciaddr !== ZERO) return { address: req.ciaddr, port: clientPort, fallbackToBroadcast: false };
  if (req.broadcast || yiaddr === ZERO) return { address: BROADCAST, port: clientPort, fallbackToBroadcast: false };
  return { address: yiaddr, port: clientPort, fallbackToBroadcast: true };
}
