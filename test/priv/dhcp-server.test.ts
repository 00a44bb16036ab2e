// The DHCP server's state machine over real sockets in real namespaces, driven by the
// in-process test client: listening as soon as start() resolves, unicast/broadcast reply
// rules (RFC 2131 4.1), NAK, silence for other servers and foreign MACs, DECLINE, RELEASE,
// INFORM, malformed input. Absence of a reply is proven by ordering: the server handles
// messages in order, so once a later probe is answered the earlier message was handled.
import { afterEach, expect, it } from 'vitest';
import { MessageType, Opt } from '../../src/dhcp/constants';
import { ClasslessRoutesOption, IpOption, TextOption } from '../../src/dhcp/options';
import { DhcpServer, type DhcpServerOptions } from '../../src/dhcp/server';
import { createLogger } from '../../src/util/log';
import { DEFAULT_LOG_LIMIT, RateLimiter } from '../../src/util/rate-limit';
import { DhcpTestClient } from '../fixtures/dhcp-client';
import { makeDhcpNet, makeLease, SERVER_ID, type DhcpNet } from '../fixtures/dhcp-net';
import { removeAllNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('dhcp server state machine on a bridge in a netns', () => {
  let net: DhcpNet;
  let server: DhcpServer | undefined;
  let client: DhcpTestClient | undefined;

  afterEach(async () => {
    await client?.close();
    await server?.close();
    client = server = undefined;
    removeAllNetns();
  });

  async function setup(
    over = {},
    more: Partial<DhcpServerOptions> = {},
  ): Promise<{ s: DhcpServer; c: DhcpTestClient }> {
    net = makeDhcpNet(makeLease(over));
    server = await DhcpServer.start({
      ifname: 'br0',
      netns: net.server.path,
      serverId: SERVER_ID,
      leases: [net.lease],
      ...more,
    });
    client = await DhcpTestClient.open(net.client.path, 'eth0', net.lease.mac);
    return { s: server, c: client };
  }

  /** An INFORM (changes no binding) whose broadcast ACK proves every earlier message was handled. */
  async function probe(c: DhcpTestClient): Promise<void> {
    expect((await c.exchange(c.build(MessageType.INFORM)))?.packet.messageType).toBe(MessageType.ACK);
  }

  it('answers a DISCOVER sent the moment start() resolves, then ACKs the REQUEST (DORA, broadcast flag)', async () => {
    const { s, c } = await setup();
    const offer = await c.exchange(c.discover());
    expect(offer).toBeDefined();
    const o = offer!.packet;
    expect(o.messageType).toBe(MessageType.OFFER);
    expect(o.yiaddr).toBe('10.77.0.5');
    expect(o.get(Opt.SERVER_ID, IpOption)?.address).toBe(SERVER_ID);
    expect(o.get(Opt.SUBNET_MASK, IpOption)?.address).toBe('255.255.255.0');
    expect(o.get(Opt.CLASSLESS_ROUTES, ClasslessRoutesOption)?.routes[0]).toEqual({
      dst: '169.254.254.2/32',
      gw: '0.0.0.0',
    });
    expect(offer!.from).toBe(SERVER_ID);
    const ack = await c.exchange(c.request('10.77.0.5', SERVER_ID));
    expect(ack?.packet.messageType).toBe(MessageType.ACK);
    expect(ack?.packet.yiaddr).toBe('10.77.0.5');
    expect(s.stats().leases[0]).toMatchObject({ state: 'bound' });
    expect(s.stats().leases[0]!.expiresAt).toBeDefined();
  });

  it('unicasts to yiaddr without the broadcast flag: no route to the guest subnet, the bound device is used', async () => {
    const { c } = await setup();
    // stand-in for a client that takes unicast before configuring: give eth0 the address
    net.client.ip('addr', 'add', '10.77.0.5/24', 'dev', 'eth0');
    expect(net.server.ip('-4', 'route', 'get', '10.77.0.5', 'oif', 'br0')).toContain('dev br0');
    expect(() => net.server.ip('-4', 'route', 'get', '10.77.0.5')).toThrow(); // no route without the device
    const offer = await c.exchange(c.discover({ broadcast: false }));
    expect(offer?.packet.messageType).toBe(MessageType.OFFER);
  });

  it('NAKs an INIT-REBOOT for a wrong address, by broadcast, with no lease options', async () => {
    const { s, c } = await setup();
    const r = await c.exchange(c.request('10.77.0.99'));
    expect(r?.packet.messageType).toBe(MessageType.NAK);
    expect(r?.packet.yiaddr).toBe('0.0.0.0');
    expect(r?.packet.get(Opt.SERVER_ID, IpOption)?.address).toBe(SERVER_ID);
    expect(r?.packet.get(Opt.MESSAGE, TextOption)?.text).toContain('10.77.0.99');
    expect(r?.packet.options.has(Opt.LEASE_TIME)).toBe(false);
    // a SELECTING request for a wrong address is NAKed too; the right one is ACKed
    expect((await c.exchange(c.request('10.77.0.6', SERVER_ID)))?.packet.messageType).toBe(MessageType.NAK);
    expect((await c.exchange(c.request('10.77.0.5')))?.packet.messageType).toBe(MessageType.ACK);
    expect(s.stats()).toMatchObject({ nak: 2, ack: 1, requestInitReboot: 2, requestSelecting: 1 });
  });

  it('ignores a REQUEST naming another server and a foreign MAC; survives garbage', async () => {
    const { s, c } = await setup();
    c.sendRaw(c.request('10.77.0.5', '10.0.0.1').encode());
    const foreign = c.discover();
    foreign.setMac('02:00:00:00:00:99');
    c.sendRaw(foreign.encode());
    c.sendRaw(Buffer.from('not dhcp at all'));
    const truncated = c.discover().encode().subarray(0, 250);
    c.sendRaw(truncated);
    await probe(c);
    expect(s.stats()).toMatchObject({
      otherServer: 1,
      unknownMac: 1,
      decodeErrors: 2,
      offer: 0,
      inform: 1,
      nak: 0,
      internalErrors: 0,
    });
  });

  it('records DECLINE and RELEASE; answers INFORM with configuration but no lease', async () => {
    const { s, c } = await setup();
    c.sendRaw(
      c
        .build(MessageType.DECLINE)
        .set(Opt.REQUESTED_IP, new IpOption('10.77.0.5'))
        .set(Opt.SERVER_ID, new IpOption(SERVER_ID))
        .encode(),
    );
    await probe(c);
    expect(s.stats()).toMatchObject({ decline: 1 });
    expect(s.stats().leases[0]!.state).toBe('declined');

    await c.exchange(c.request('10.77.0.5', SERVER_ID));
    expect(s.stats().leases[0]!.state).toBe('bound');
    net.client.ip('addr', 'add', '10.77.0.5/24', 'dev', 'eth0');
    net.client.ip('route', 'add', `${SERVER_ID}/32`, 'dev', 'eth0', 'scope', 'link');
    const inform = await c.exchange(c.build(MessageType.INFORM, { ciaddr: '10.77.0.5', broadcast: false }), SERVER_ID);
    expect(inform?.packet.messageType).toBe(MessageType.ACK);
    expect(inform?.packet.yiaddr).toBe('0.0.0.0');
    expect(inform?.packet.options.has(Opt.LEASE_TIME)).toBe(false);
    expect(inform?.packet.options.has(Opt.DNS)).toBe(true);
    expect(inform?.from).toBe(SERVER_ID);

    const renew = await c.exchange(c.build(MessageType.REQUEST, { ciaddr: '10.77.0.5', broadcast: false }), SERVER_ID);
    expect(renew?.packet.messageType).toBe(MessageType.ACK);

    c.sendRaw(
      c.build(MessageType.RELEASE, { ciaddr: '10.77.0.5' }).set(Opt.SERVER_ID, new IpOption(SERVER_ID)).encode(),
      SERVER_ID,
    );
    await probe(c);
    expect(s.stats()).toMatchObject({ release: 1, inform: 3, requestRenewOrRebind: 1 });
    expect(s.stats().leases[0]!.state).toBe('released');
  });

  it('a guest flooding DECLINEs and wrong REQUESTs (NAKs) leaves a bounded log, DECLINE at warn, and the rest counted', async () => {
    let text = '';
    const clock = { now: 0 }; // the limiter's clock: still through the flood, then moved on
    const { s, c } = await setup(
      {},
      {
        logger: createLogger('dhcp', (l) => (text += l)),
        logLimit: new RateLimiter(DEFAULT_LOG_LIMIT, () => clock.now),
      },
    );
    const decline = (): Buffer =>
      c
        .build(MessageType.DECLINE)
        .set(Opt.REQUESTED_IP, new IpOption('10.77.0.5'))
        .set(Opt.SERVER_ID, new IpOption(SERVER_ID))
        .encode();
    const N = 3000;
    const BATCH = 20; // each batch well inside the socket's receive buffer, so nothing is dropped
    for (let i = 0; i < N; i += BATCH) {
      for (let j = 0; j < BATCH; j++) {
        c.sendRaw(decline());
        c.sendRaw(c.request('10.77.0.99').encode()); // INIT-REBOOT for a wrong address: NAK
      }
      await probe(c);
    }
    expect(s.stats()).toMatchObject({ decline: N, nak: N, internalErrors: 0 });
    const lines = () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const { burst } = DEFAULT_LOG_LIMIT;
    expect(lines().filter((l) => l.msg === 'NAK')).toHaveLength(burst);
    expect(
      lines()
        .filter((l) => /^DECLINE/.test(String(l.msg)))
        .map((l) => l.level),
    ).toEqual(Array.from({ length: burst }, () => 'warn'));
    expect(s.stats().logLinesSuppressed).toBe(2 * (N - burst));
    expect(Buffer.byteLength(text)).toBeLessThan(10_000); // unlimited: ~1.1 MB

    // an interval later the next line of each kind passes and says how many it stands for
    clock.now += DEFAULT_LOG_LIMIT.intervalMs;
    c.sendRaw(decline());
    expect((await c.exchange(c.request('10.77.0.99')))?.packet.messageType).toBe(MessageType.NAK);
    expect(
      lines()
        .filter((l) => l.msg === 'NAK')
        .at(-1),
    ).toMatchObject({ level: 'info', suppressed: N - burst });
    expect(
      lines()
        .filter((l) => /^DECLINE/.test(String(l.msg)))
        .at(-1),
    ).toMatchObject({
      level: 'warn',
      suppressed: N - burst,
    });
    expect(lines().filter((l) => l.level === 'error')).toEqual([]);
  });

  it('setLeases swaps leases live; start() names the device and netns it could not use', async () => {
    const { s, c } = await setup();
    s.setLeases([{ ...net.lease, ip: '10.77.0.7' }]);
    expect((await c.exchange(c.discover()))?.packet.yiaddr).toBe('10.77.0.7');
    await expect(
      DhcpServer.start({ ifname: 'nosuch0', netns: net.server.path, serverId: SERVER_ID, leases: [] }),
    ).rejects.toMatchObject({
      code: 'ENODEV',
      message: expect.stringContaining(`"nosuch0" port 67 in netns ${net.server.path}`),
    });
  });
});
