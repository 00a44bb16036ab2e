// Where a reply goes, replyDestination(req, reply, serverPort, clientPort), against RFC 2131
// 4.1: "If the 'giaddr' field in a DHCP message from a client is non-zero, the server sends
// any return messages to the 'DHCP server' port on the BOOTP relay agent whose address
// appears in 'giaddr'. If the 'giaddr' field is zero and the 'ciaddr' field is nonzero, then
// the server unicasts DHCPOFFER and DHCPACK messages to the address in 'ciaddr'. If 'giaddr'
// is zero and 'ciaddr' is zero, and the broadcast bit is set, then the server broadcasts
// DHCPOFFER and DHCPACK messages to 0xffffffff. If the broadcast bit is not set and 'giaddr'
// is zero and 'ciaddr' is zero, then the server unicasts DHCPOFFER and DHCPACK messages to
// the client's hardware address and 'yiaddr' address. In all cases, when 'giaddr' is zero,
// the server broadcasts any DHCPNAK messages to 0xffffffff."
// The last unicast is marked fallbackToBroadcast: the server retries as a broadcast if the
// kernel cannot send to an address-less client (destination.ts header).
import { describe, expect, it } from 'vitest';
import { CLIENT_PORT, FLAG_BROADCAST, MessageType, Opt, SERVER_PORT } from '../../src/dhcp/constants';
import { BROADCAST, replyDestination } from '../../src/dhcp/destination';
import { DhcpPacket } from '../../src/dhcp/packet';

const RELAY = '10.1.0.1';
const CLIENT = '10.77.0.5';

interface Case {
  ciaddr?: string;
  giaddr?: string;
  broadcast?: boolean;
  /** reply type */
  type: number;
  /** reply yiaddr; defaults to the lease for OFFER/ACK */
  yiaddr?: string;
}

function destination(c: Case, ports: [number, number] = [SERVER_PORT, CLIENT_PORT]) {
  const req = new DhcpPacket().setMac('02:42:0a:4d:00:05');
  req.ciaddr = c.ciaddr ?? '0.0.0.0';
  req.giaddr = c.giaddr ?? '0.0.0.0';
  req.flags = c.broadcast ? FLAG_BROADCAST : 0;
  const reply = new DhcpPacket();
  reply.op = 2;
  reply.flags = req.flags;
  reply.giaddr = req.giaddr;
  reply.yiaddr = c.yiaddr ?? (c.type === MessageType.NAK ? '0.0.0.0' : CLIENT);
  reply.options.set(Opt.MESSAGE_TYPE, Buffer.from([c.type]));
  return replyDestination(req, reply, ports[0], ports[1]);
}

const to = (address: string, port: number, fallbackToBroadcast = false) => ({ address, port, fallbackToBroadcast });

describe('reply destination (RFC 2131 4.1)', () => {
  it('giaddr set: to the relay, on the server port, whatever else is set', () => {
    for (const type of [MessageType.OFFER, MessageType.ACK, MessageType.NAK]) {
      expect(destination({ type, giaddr: RELAY }), `type ${type}`).toEqual(to(RELAY, SERVER_PORT));
      expect(destination({ type, giaddr: RELAY, broadcast: true })).toEqual(to(RELAY, SERVER_PORT));
      expect(destination({ type, giaddr: RELAY, ciaddr: CLIENT })).toEqual(to(RELAY, SERVER_PORT));
    }
  });

  it('NAK without a relay: broadcast, even when ciaddr is set (a renewing client told no)', () => {
    expect(destination({ type: MessageType.NAK })).toEqual(to(BROADCAST, CLIENT_PORT));
    expect(destination({ type: MessageType.NAK, ciaddr: CLIENT })).toEqual(to(BROADCAST, CLIENT_PORT));
    expect(destination({ type: MessageType.NAK, broadcast: false })).toEqual(to('255.255.255.255', CLIENT_PORT));
  });

  it('ciaddr set: unicast to ciaddr (RENEWING, REBINDING even though broadcast, INFORM)', () => {
    expect(destination({ type: MessageType.ACK, ciaddr: CLIENT })).toEqual(to(CLIENT, CLIENT_PORT));
    expect(destination({ type: MessageType.ACK, ciaddr: CLIENT, broadcast: true })).toEqual(to(CLIENT, CLIENT_PORT));
    expect(destination({ type: MessageType.ACK, ciaddr: '10.0.0.9', yiaddr: '0.0.0.0' })).toEqual(
      to('10.0.0.9', CLIENT_PORT),
    );
  });

  it('broadcast bit, no ciaddr, no giaddr: broadcast', () => {
    expect(destination({ type: MessageType.OFFER, broadcast: true })).toEqual(to(BROADCAST, CLIENT_PORT));
    expect(destination({ type: MessageType.ACK, broadcast: true })).toEqual(to(BROADCAST, CLIENT_PORT));
  });

  it('no broadcast bit, no ciaddr, no giaddr: unicast to yiaddr (at chaddr), broadcast if that send fails', () => {
    expect(destination({ type: MessageType.OFFER })).toEqual(to(CLIENT, CLIENT_PORT, true));
    expect(destination({ type: MessageType.ACK })).toEqual(to(CLIENT, CLIENT_PORT, true));
  });

  it('nowhere to unicast (no ciaddr, no yiaddr): broadcast', () => {
    expect(destination({ type: MessageType.ACK, yiaddr: '0.0.0.0' })).toEqual(to(BROADCAST, CLIENT_PORT));
  });

  it('uses the ports it is given (the server can run on others for tests)', () => {
    expect(destination({ type: MessageType.ACK, giaddr: RELAY }, [1067, 1068])).toEqual(to(RELAY, 1067));
    expect(destination({ type: MessageType.ACK, ciaddr: CLIENT }, [1067, 1068])).toEqual(to(CLIENT, 1068));
    expect(destination({ type: MessageType.NAK }, [1067, 1068])).toEqual(to(BROADCAST, 1068));
  });

  it('only the leftmost flag bit means broadcast', () => {
    const req = new DhcpPacket();
    req.flags = 0x7fff;
    const reply = new DhcpPacket();
    reply.yiaddr = CLIENT;
    reply.options.set(Opt.MESSAGE_TYPE, Buffer.from([MessageType.OFFER]));
    expect(replyDestination(req, reply, SERVER_PORT, CLIENT_PORT)).toEqual(to(CLIENT, CLIENT_PORT, true));
  });
});
