// The guest's kernel command line and QEMU arguments: what each option becomes, and
// bad values rejected with the field and the value named (GuestError EINVAL).
import { describe, expect, it } from 'vitest';
import { BASE_CMDLINE, guestCmdline } from '../../src/guest/cmdline';
import { GuestError } from '../../src/guest/errors';
import { QEMU_NIC_MODELS, qemuArgs, QemuOptions } from '../../src/guest/qemu';

function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GuestError);
    expect((e as GuestError).code).toBe('EINVAL');
    return (e as Error).message;
  }
  throw new Error('no error thrown');
}

describe('guestCmdline', () => {
  it('is the quiet serial base alone by default', () => {
    expect(guestCmdline()).toBe('console=ttyS0 quiet panic=-1');
    expect(BASE_CMDLINE).toContain('panic=-1'); // a panic reboots, which -no-reboot turns into an exit
  });

  it('adds one tapwire.* word per option', () => {
    expect(
      guestCmdline({
        ping: ['gw', '10.0.0.1', 'fd00::1'],
        count: 3,
        tcp: [
          { host: '10.0.0.1', port: 80 },
          { host: '10.0.0.2', port: 8080 },
        ],
        listen: [8080, 9090],
        hold: 5,
        dhcp: false,
        dhcp6: true,
        dhcpTries: 20,
        stay: true,
      }),
    ).toBe(
      'console=ttyS0 quiet panic=-1 tapwire.ping=gw,10.0.0.1,fd00::1 tapwire.count=3' +
        ' tapwire.tcp=10.0.0.1:80,10.0.0.2:8080 tapwire.listen=8080,9090 tapwire.hold=5 tapwire.dhcp=off' +
        ' tapwire.dhcp6=on tapwire.dhcp_tries=20 tapwire.stay=1',
    );
    expect(guestCmdline({ ping: [] })).toBe('console=ttyS0 quiet panic=-1 tapwire.ping=none');
    expect(guestCmdline({ dhcp: true, stay: false, tcp: [], listen: [] })).toBe(
      'console=ttyS0 quiet panic=-1 tapwire.dhcp=on',
    );
  });

  it('rejects bad values, naming the field and the value', () => {
    expect(invalid(() => guestCmdline({ ping: ['10.0.0.1', 'x y'] }))).toBe(
      'invalid ping[1] "x y": must be an IPv4 or IPv6 address',
    );
    expect(invalid(() => guestCmdline({ ping: 'gw' as unknown as string[] }))).toMatch(/^invalid ping "gw"/);
    expect(invalid(() => guestCmdline({ tcp: [{ host: '10.0.0.1', port: 0 }] }))).toBe(
      'invalid tcp[0].port 0: must be an integer from 1 to 65535',
    );
    expect(invalid(() => guestCmdline({ tcp: [{ host: 'fd00::1', port: 80 }] }))).toBe(
      'invalid tcp[0].host "fd00::1": must be an IPv4 address',
    );
    expect(invalid(() => guestCmdline({ listen: [80, 1.5] }))).toMatch(/^invalid listen\[1\] 1\.5/);
    expect(invalid(() => guestCmdline({ hold: -1 }))).toMatch(/^invalid hold -1/);
    expect(invalid(() => guestCmdline({ count: 0 }))).toMatch(/^invalid count 0/);
    expect(invalid(() => guestCmdline({ dhcpTries: Number.NaN }))).toMatch(/^invalid dhcpTries null/);
  });

  it('gives a NIC a static address by its MAC: IPv4 or IPv6, with or without a gateway', () => {
    expect(
      guestCmdline({
        static: [
          { mac: '02:00:00:77:00:03', address: '192.168.77.5/24' },
          { mac: 'DE:AD:00:00:BE:AF', address: '10.1.0.5/16', gateway: '10.1.0.1' },
          { mac: '02:00:00:00:00:06', address: 'fd00:77::5/64', gateway: 'fd00:77::1' },
        ],
      }),
    ).toBe(
      'console=ttyS0 quiet panic=-1 tapwire.static=02:00:00:77:00:03@192.168.77.5/24,' +
        'de:ad:00:00:be:af@10.1.0.5/16@10.1.0.1,02:00:00:00:00:06@fd00:77::5/64@fd00:77::1',
    );
    const mac = '02:00:00:77:00:03';
    expect(invalid(() => guestCmdline({ static: [{ mac: '02:00', address: '10.0.0.1/24' }] }))).toBe(
      'invalid static[0].mac "02:00": must be a MAC address (aa:bb:cc:dd:ee:ff)',
    );
    for (const address of ['10.0.0.1', '10.0.0.1/33', '10.0.0.1/24/1', 'x/24', 'fd00::1/129', '10.0.0.1/ 24'])
      expect(invalid(() => guestCmdline({ static: [{ mac, address }] }))).toMatch(/^invalid static\[0\]\.address/);
    expect(invalid(() => guestCmdline({ static: [{ mac, address: '10.0.0.2/24', gateway: 'fd00::1' }] }))).toBe(
      'invalid static[0].gateway "fd00::1": must be an IPv4 address, as the address is',
    );
    expect(invalid(() => guestCmdline({ static: [{ mac, address: '10.0.0.2/24', gateway: 'a,b' }] }))).toMatch(
      /^invalid static\[0\]\.gateway "a,b": must be an IPv4 or IPv6 address/,
    );
    expect(
      invalid(() =>
        guestCmdline({
          static: [
            { mac, address: '10.0.0.2/24' },
            { mac: mac.toUpperCase(), address: '10.0.1.2/24' },
          ],
        }),
      ),
    ).toMatch(/^invalid static\[1\]\.mac "02:00:00:77:00:03": has a static address already/);
  });
});

describe('qemuArgs', () => {
  const base: QemuOptions = {
    kernel: '/c/vmlinuz',
    initrd: '/c/initrd.img',
    append: 'console=ttyS0 quiet',
    console: 'stdio',
  };

  it('is a small TCG pc machine with no defaults, the console on stdout and no NIC', () => {
    expect(qemuArgs(base)).toEqual([
      '-name', 'tapwire-guest',
      '-machine', 'pc', '-accel', 'tcg', '-m', '256', '-smp', '1',
      '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-no-reboot',
      '-serial', 'stdio',
      '-kernel', '/c/vmlinuz',
      '-initrd', '/c/initrd.img',
      '-append', 'console=ttyS0 quiet',
    ]); // prettier-ignore
  });

  it('puts the console in a file, and adds virtio-net NICs on the given netdevs', () => {
    const args = qemuArgs({
      ...base,
      name: 'g1',
      memMiB: 128,
      console: { file: '/tmp/c.log' },
      nics: [
        { netdev: 'tap,fd=3', mac: '02:00:00:00:00:01' },
        { netdev: 'tap,fds=4:5,vhost=off', mac: '02:00:00:00:00:02', queues: 2 },
      ],
    });
    expect(args.slice(0, 2)).toEqual(['-name', 'g1']);
    expect(args[args.indexOf('-m') + 1]).toBe('128');
    expect(args[args.indexOf('-serial') + 1]).toBe('file:/tmp/c.log');
    expect(args.slice(args.indexOf('-netdev'))).toEqual([
      '-netdev', 'tap,fd=3,id=twnet0',
      '-device', 'virtio-net-pci,netdev=twnet0,mac=02:00:00:00:00:01',
      '-netdev', 'tap,fds=4:5,vhost=off,id=twnet1',
      '-device', 'virtio-net-pci,netdev=twnet1,mac=02:00:00:00:00:02,mq=on,vectors=6',
    ]); // prettier-ignore
  });

  it('rejects what QEMU would misread, naming the field', () => {
    expect(invalid(() => qemuArgs({ ...base, kernel: '/a,b/vmlinuz' }))).toBe(
      'invalid kernel "/a,b/vmlinuz": must be a non-empty string without commas or newlines',
    );
    expect(invalid(() => qemuArgs({ ...base, initrd: '' }))).toMatch(/^invalid initrd ""/);
    expect(invalid(() => qemuArgs({ ...base, console: { file: 'a,b' } }))).toMatch(/^invalid console.file "a,b"/);
    expect(invalid(() => qemuArgs({ ...base, append: 'a\nb' }))).toMatch(/^invalid append/);
    expect(invalid(() => qemuArgs({ ...base, memMiB: 8 }))).toMatch(/^invalid memMiB 8/);
    expect(invalid(() => qemuArgs({ ...base, nics: [{ netdev: 'tap,fd=3', mac: '02:00:00:00:00' }] }))).toMatch(
      /^invalid nics\[0\]\.mac "02:00:00:00:00"/,
    );
    expect(invalid(() => qemuArgs({ ...base, nics: [{ netdev: 'tap,fd=3,id=x', mac: '02:00:00:00:00:01' }] }))).toMatch(
      /^invalid nics\[0\]\.netdev "tap,fd=3,id=x": .*without an id/,
    );
    expect(invalid(() => qemuArgs({ ...base, nics: [{ netdev: 'tap,fd=3 -x', mac: '02:00:00:00:00:01' }] }))).toMatch(
      /^invalid nics\[0\]\.netdev/,
    );
    expect(
      invalid(() => qemuArgs({ ...base, nics: [{ netdev: 'tap,fd=3', mac: '02:00:00:00:00:01', queues: 0 }] })),
    ).toMatch(/^invalid nics\[0\]\.queues 0/);
    const nic = { netdev: 'tap,fd=3', mac: '02:00:00:00:00:01' };
    expect(invalid(() => qemuArgs({ ...base, nics: [{ ...nic, model: 'e1000,x=1' as never }] }))).toMatch(
      /^invalid nics\[0\]\.model "e1000,x=1": must be one of virtio-net-pci, e1000/,
    );
    expect(invalid(() => qemuArgs({ ...base, nics: [{ ...nic, model: 'e1000', queues: 2 }] }))).toMatch(
      /^invalid nics\[0\]\.queues 2: .*virtio-net-pci only/,
    );
  });

  it('gives each NIC its model: every spec model is a QEMU device', () => {
    const args = qemuArgs({
      ...base,
      nics: QEMU_NIC_MODELS.map((model, i) => ({ netdev: `tap,fd=${3 + i}`, mac: `02:00:00:00:00:0${i}`, model })),
    });
    expect(args.filter((_, i) => args[i - 1] === '-device')).toEqual(
      QEMU_NIC_MODELS.map((m, i) => `${m},netdev=twnet${i},mac=02:00:00:00:00:0${i}`),
    );
  });
});
