// The guest's console as a report: line parsing (prefix, event, key=value, "-" and
// lists), the typed facts, the verdict, and a console read in arbitrary chunks with
// kernel noise and CRLF in between.
import { describe, expect, it } from 'vitest';
import { ConsoleReader } from '../../src/guest/console';
import { parseConsole, parseLine, verdict } from '../../src/guest/report';

const CONSOLE = [
  '[    1.234567] Run /init as init process',
  'tapwire-guest start guest=1-0123456789abcdef kernel=6.1.0-57-cloud-amd64 up=1.60',
  'tapwire-guest nic name=eth0 mac=52:54:00:12:34:56 mtu=1500 driver=virtio_net up=1.85',
  'tapwire-guest nic name=eth1 mac=52:54:00:12:34:57 mtu=1500 driver=virtio_net up=1.86',
  'tapwire-guest lease nic=eth0 family=4 ip=10.250.0.2 mask=24 router=10.250.0.1 dns=10.250.0.10,10.250.0.11' +
    ' domain=- search=default.svc.cluster.local,svc.cluster.local mtu=1450' +
    ' routes=169.254.254.2/32:0.0.0.0,0.0.0.0/0:10.250.0.1 hostname=demo-vm lease=3600 server=169.254.254.2' +
    ' event=bound up=2.41',
  'tapwire-guest dhcp-fail nic=eth1 family=4 rc=1 up=32.0',
  'tapwire-guest addr nic=eth0 family=4 addr=10.250.0.2/24 up=2.46',
  'tapwire-guest route family=4 dst=default via=10.250.0.1 dev=eth0 metric=102 flags=onlink up=2.48',
  'tapwire-guest resolv nameservers=10.250.0.10 search=- up=2.53',
  'tapwire-guest listen port=8080 ok=1 up=2.6',
  'tapwire-guest ping target=10.250.0.1 sent=2 recv=2 ok=1 up=2.82',
  'tapwire-guest tcp target=10.250.0.1:80 ok=0 rc=1 got=- up=2.9',
  'tapwire-guest accept port=8080 up=3.0',
  'tapwire-guest done status=fail failed=lease:eth1,tcp:10.250.0.1:80 up=3.1',
  '[    3.2] reboot: Power down',
].join('\r\n');

describe('parseLine', () => {
  it('takes the event and the key=value words of a tapwire-guest line', () => {
    expect(parseLine('tapwire-guest ping target=10.0.0.1 sent=2 recv=1 ok=1 up=3.5\r')).toEqual({
      event: 'ping',
      fields: { target: '10.0.0.1', sent: '2', recv: '1', ok: '1', up: '3.5' },
    });
  });

  it('keeps "=" inside a value and skips words without one', () => {
    expect(parseLine('tapwire-guest warn unknown=tapwire.foo=1 stray up=1')?.fields).toEqual({
      unknown: 'tapwire.foo=1',
      up: '1',
    });
  });

  it('ignores everything else on the console', () => {
    for (const l of [
      '',
      '[    0.1] tapwire-guest start',
      'tapwire-guest',
      'tapwire-guestx start up=1',
      ' tapwire-guest start up=1',
      'tapwire-guest Start up=1',
      'tapwire-guest $(rm) x=1',
    ]) {
      expect(parseLine(l), l).toBeUndefined();
    }
  });
});

describe('parseConsole', () => {
  const r = parseConsole(CONSOLE);

  it('collects the typed facts in order', () => {
    expect(r.start).toEqual({ guest: '1-0123456789abcdef', kernel: '6.1.0-57-cloud-amd64', up: 1.6 });
    expect(r.nics.map((n) => [n.name, n.mac, n.mtu, n.driver])).toEqual([
      ['eth0', '52:54:00:12:34:56', 1500, 'virtio_net'],
      ['eth1', '52:54:00:12:34:57', 1500, 'virtio_net'],
    ]);
    expect(r.leases).toEqual([
      {
        nic: 'eth0',
        family: 4,
        ip: '10.250.0.2',
        addrs: ['10.250.0.2'],
        mask: '24',
        router: ['10.250.0.1'],
        dns: ['10.250.0.10', '10.250.0.11'],
        domain: '',
        search: ['default.svc.cluster.local', 'svc.cluster.local'],
        mtu: '1450',
        routes: ['169.254.254.2/32:0.0.0.0', '0.0.0.0/0:10.250.0.1'],
        hostname: 'demo-vm',
        lease: '3600',
        server: '169.254.254.2',
      },
    ]);
    expect(r.dhcpFailures).toEqual([{ nic: 'eth1', family: '4', rc: '1' }]);
    expect(r.addrs).toEqual([{ nic: 'eth0', family: '4', addr: '10.250.0.2/24' }]);
    expect(r.routes).toEqual([
      { family: '4', dst: 'default', via: '10.250.0.1', dev: 'eth0', metric: '102', flags: 'onlink' },
    ]);
    expect(r.resolv).toEqual({ nameservers: ['10.250.0.10'], search: [] });
    expect(r.listens).toEqual([{ port: 8080, ok: true }]);
    expect(r.accepts).toEqual([{ port: 8080 }]);
    expect(r.pings).toEqual([{ target: '10.250.0.1', sent: 2, recv: 2, ok: true }]);
    expect(r.tcp).toEqual([{ target: '10.250.0.1:80', ok: false, rc: '1', got: '' }]);
    expect(r.done).toEqual({ status: 'fail', failed: ['lease:eth1', 'tcp:10.250.0.1:80'], up: 3.1 });
    expect(r.lines).toHaveLength(13);
    expect(r.lines.every((l) => l.startsWith('tapwire-guest ') && !l.endsWith('\r'))).toBe(true);
  });

  it('collects the static addresses the guest applied', () => {
    const r2 = parseConsole(
      'tapwire-guest static nic=eth2 addr=192.168.77.5/24 gateway=- ok=1 up=3.1\n' +
        'tapwire-guest static nic=eth3 addr=fd00::5/64 gateway=fd00::1 ok=0 up=3.2\n',
    );
    expect(r2.statics).toEqual([
      { nic: 'eth2', addr: '192.168.77.5/24', gateway: '', ok: true },
      { nic: 'eth3', addr: 'fd00::5/64', gateway: 'fd00::1', ok: false },
    ]);
  });

  it('collects a DHCPv6 lease (every IA_NA address), the RA router and the IPv6 routes', () => {
    const r2 = parseConsole(
      [
        'tapwire-guest lease nic=eth0 family=6 ip=fd00:7::5 mask=128 addrs=fd00:7::5,fd00:7::6 router=-' +
          ' dns=fd00:96::a search=svc.cluster.local,cluster.local mtu=- routes=- hostname=- lease=3600' +
          ' server=00030001aabbccddeeff event=bound6 up=6.7',
        'tapwire-guest ra nic=eth0 router=fe80::1 mtu=1450 up=6.8',
        'tapwire-guest ra nic=eth1 router=- mtu=1500 up=6.9',
        'tapwire-guest route family=6 dst=default via=fe80::1 dev=eth0 metric=1024 up=6.9',
        'tapwire-guest ping target=fe80::1%eth0 sent=2 recv=2 ok=1 up=7.2',
        'tapwire-guest done status=ok failed=- up=7.3',
      ].join('\n'),
    );
    expect(r2.leases).toEqual([
      expect.objectContaining({
        nic: 'eth0',
        family: 6,
        ip: 'fd00:7::5',
        addrs: ['fd00:7::5', 'fd00:7::6'],
        mask: '128',
        router: [],
        dns: ['fd00:96::a'],
        search: ['svc.cluster.local', 'cluster.local'],
        server: '00030001aabbccddeeff',
      }),
    ]);
    expect(r2.routers6).toEqual([
      { nic: 'eth0', router: 'fe80::1', mtu: 1450 },
      { nic: 'eth1', router: '', mtu: 1500 },
    ]);
    expect(r2.routes).toEqual([{ family: '6', dst: 'default', via: 'fe80::1', dev: 'eth0', metric: '1024' }]);
    expect(r2.pings).toEqual([{ target: 'fe80::1%eth0', sent: 2, recv: 2, ok: true }]);
    // an IPv6 lease is not an IPv4 one
    expect(verdict(r2, { leases: 0, leases6: 1 })).toEqual({ ok: true, problems: [] });
    expect(verdict(r2).problems).toEqual(['the guest reported 0 lease(s), expected 1']);
    expect(verdict(r2, { leases: 0, leases6: 2 }).problems).toEqual([
      'the guest reported 1 DHCPv6 lease(s), expected 2',
    ]);
  });

  it('keeps lines of events it does not know, and a number it cannot read is NaN', () => {
    const r2 = parseConsole('tapwire-guest future-event a=1\ntapwire-guest nic name=eth0 mtu=x\n');
    expect(r2.lines).toEqual(['tapwire-guest future-event a=1', 'tapwire-guest nic name=eth0 mtu=x']);
    expect(r2.nics[0]!.mtu).toBeNaN();
  });
});

describe('verdict', () => {
  const ok = parseConsole(
    [
      'tapwire-guest lease nic=eth0 family=4 ip=10.0.0.2 mask=24 router=10.0.0.1 hostname=g up=2',
      'tapwire-guest ping target=10.0.0.1 sent=2 recv=1 ok=1 up=3',
      'tapwire-guest done status=ok failed=- up=4',
    ].join('\n'),
  );

  it('passes a finished guest with its lease and checks ok', () => {
    expect(verdict(ok)).toEqual({ ok: true, problems: [] });
    expect(verdict(ok, { leases: 1, pings: 1, lease: { ip: '10.0.0.2', router: '10.0.0.1', hostname: 'g' } }).ok).toBe(
      true,
    );
  });

  it('names each problem', () => {
    const v = verdict(parseConsole(CONSOLE), { leases: 2, lease: { ip: '10.250.0.9' }, pings: 3 });
    expect(v.ok).toBe(false);
    expect(v.problems).toEqual([
      'the guest finished with status=fail (failed: lease:eth1, tcp:10.250.0.1:80)',
      'the guest reported 1 lease(s), expected 2',
      'lease ip=10.250.0.2, expected 10.250.0.9',
      'the guest made 1 ping check(s), expected 3',
      'tcp 10.250.0.1:80 failed (rc 1)',
    ]);
  });

  it('fails a guest that never finished or leased', () => {
    expect(verdict(parseConsole('')).problems).toEqual([
      'the guest never said done',
      'the guest reported 0 lease(s), expected 1',
    ]);
    expect(verdict(parseConsole(''), { lease: { router: '10.0.0.1' } }).problems).toContain(
      'lease router=(no lease), expected 10.0.0.1',
    );
  });
});

describe('ConsoleReader', () => {
  it('gives the same report whatever the chunking, with the last line unterminated', () => {
    for (const size of [1, 3, 7, 64, CONSOLE.length]) {
      const seen: string[] = [];
      const reader = new ConsoleReader((l) => seen.push(l.event));
      for (let i = 0; i < CONSOLE.length; i += size) reader.feed(CONSOLE.slice(i, i + size));
      reader.end();
      expect(reader.report, `chunks of ${size}`).toEqual(parseConsole(CONSOLE));
      expect(seen[0]).toBe('start');
      expect(seen.at(-1)).toBe('done');
      expect(reader.tail.at(-1)).toBe('[    3.2] reboot: Power down');
    }
  });

  it('keeps only the last 40 console lines as the tail', () => {
    const reader = new ConsoleReader();
    reader.feed(Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(''));
    expect(reader.tail).toHaveLength(40);
    expect(reader.tail[0]).toBe('line 60');
  });
});
