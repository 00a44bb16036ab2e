// vmwrapper's argument rewriting: NIC options appended with ids unique against argv,
// models, multiqueue and vhost syntax, JSON devices next to libvirt's, and bad input.
import { describe, expect, it } from 'vitest';
import { checkNic, expectedFdCount, netArgs, usedIds, usesJsonDevices, WrapperNic } from '../../src/vmwrapper/args';
import { emulatorEnv, readConfig, redactKey } from '../../src/vmwrapper/config';

const nic = (mac: string, model = 'virtio-net-pci', queues = 1, vhost = false): WrapperNic => ({
  mac,
  model,
  queues,
  vhost,
});

describe('netArgs', () => {
  it('appends one -netdev and one -device per NIC, for each model', () => {
    const nics = [
      nic('02:00:00:00:00:01'),
      nic('02:00:00:00:00:02', 'e1000'),
      nic('02:00:00:00:00:03', 'e1000e'),
      nic('02:00:00:00:00:04', 'rtl8139'),
    ];
    expect(netArgs(['-m', '256'], nics, [3, 4, 5, 6])).toEqual([
      '-netdev',
      'tap,id=tapwire0,fd=3',
      '-device',
      'virtio-net-pci,netdev=tapwire0,mac=02:00:00:00:00:01,id=tapwire-nic0',
      '-netdev',
      'tap,id=tapwire1,fd=4',
      '-device',
      'e1000,netdev=tapwire1,mac=02:00:00:00:00:02,id=tapwire-nic1',
      '-netdev',
      'tap,id=tapwire2,fd=5',
      '-device',
      'e1000e,netdev=tapwire2,mac=02:00:00:00:00:03,id=tapwire-nic2',
      '-netdev',
      'tap,id=tapwire3,fd=6',
      '-device',
      'rtl8139,netdev=tapwire3,mac=02:00:00:00:00:04,id=tapwire-nic3',
    ]);
  });

  it('picks ids that no existing -netdev/-device/-chardev uses, key=value or JSON', () => {
    const argv = [
      '-netdev',
      'tap,id=tapwire0,fd=20',
      '-device',
      'e1000,netdev=tapwire0,id=net0',
      '-chardev',
      'socket,id=tapwire-nic1,path=/x',
      '-netdev',
      '{"type":"tap","fd":"31","id":"tapwire2"}',
      '-device',
      '{"driver":"virtio-net-pci","netdev":"tapwire2","id":"tapwire-nic3","bus":"pci.0","addr":"0x3"}',
    ];
    const out = netArgs(argv, [nic('02:00:00:00:00:0a'), nic('02:00:00:00:00:0b')], [7, 8]);
    expect(out[1]).toBe('tap,id=tapwire4,fd=7');
    expect(out[5]).toBe('tap,id=tapwire5,fd=8');
    const ids = [...usedIds(argv)];
    expect(ids).toEqual(expect.arrayContaining(['tapwire0', 'net0', 'tapwire-nic1', 'tapwire2', 'tapwire-nic3']));
    // libvirt's arguments themselves are not part of the output (the caller appends)
    expect(out.join(' ')).not.toContain('fd=20');
  });

  it('writes the device as JSON when libvirt does, so QEMU creates it after libvirt devices (PCI slots)', () => {
    const argv = ['-device', '{"driver":"virtio-balloon-pci","id":"balloon0","bus":"pci.0","addr":"0x2"}'];
    expect(usesJsonDevices(argv)).toBe(true);
    expect(usesJsonDevices(['-device', 'virtio-balloon-pci,id=balloon0'])).toBe(false);
    const out = netArgs(
      argv,
      [nic('02:00:00:00:00:01', 'e1000'), nic('02:00:00:00:00:02', 'virtio-net-pci', 2)],
      [3, 4, 5],
    );
    expect(out).toEqual([
      '-netdev',
      'tap,id=tapwire0,fd=3',
      '-device',
      '{"driver":"e1000","netdev":"tapwire0","mac":"02:00:00:00:00:01","id":"tapwire-nic0"}',
      '-netdev',
      'tap,id=tapwire1,fds=4:5',
      '-device',
      '{"driver":"virtio-net-pci","netdev":"tapwire1","mac":"02:00:00:00:00:02","id":"tapwire-nic1","mq":true,"vectors":6}',
    ]);
  });

  it('multiqueue: fds=a:b:c (no queues=, QEMU refuses it with fds=) and mq=on,vectors=2q+2', () => {
    expect(netArgs([], [nic('02:00:00:00:00:01', 'virtio-net-pci', 3)], [10, 11, 12])).toEqual([
      '-netdev',
      'tap,id=tapwire0,fds=10:11:12',
      '-device',
      'virtio-net-pci,netdev=tapwire0,mac=02:00:00:00:00:01,id=tapwire-nic0,mq=on,vectors=8',
    ]);
  });

  it('vhost only when offered: vhostfd / vhostfds after the NIC tap fds', () => {
    const nics = [
      nic('02:00:00:00:00:01', 'virtio-net-pci', 1, true),
      nic('02:00:00:00:00:02', 'virtio-net-pci', 2, true),
    ];
    expect(expectedFdCount(nics)).toBe(6);
    const out = netArgs([], nics, [3, 4, 5, 6, 7, 8]);
    expect(out[1]).toBe('tap,id=tapwire0,fd=3,vhost=on,vhostfd=4');
    expect(out[5]).toBe('tap,id=tapwire1,fds=5:6,vhost=on,vhostfds=7:8');
  });

  it('refuses an fd count that does not match the NICs', () => {
    expect(() => netArgs([], [nic('02:00:00:00:00:01', 'virtio-net-pci', 2)], [3])).toThrow(
      /daemon sent 1 fds for 1 NICs that need 2/,
    );
  });
});

describe('checkNic', () => {
  it('accepts a daemon NIC and lower-cases the MAC', () => {
    expect(
      checkNic({ mac: '02:AB:00:00:00:01', model: 'e1000', queues: 1, vnetHdr: true, tap: 't', vhost: false }, 0),
    ).toEqual(nic('02:ab:00:00:00:01', 'e1000'));
  });

  it.each([
    [{ mac: '02:00:00:00:00', model: 'e1000', queues: 1 }, /nics\[0\]\.mac "02:00:00:00:00"/],
    [{ mac: '02:00:00:00:00:01', model: 'e1000,romfile=/x', queues: 1 }, /nics\[0\]\.model "e1000,romfile=\/x"/],
    [{ mac: '02:00:00:00:00:01', model: 'e1000', queues: 0 }, /nics\[0\]\.queues 0/],
    [{ mac: '02:00:00:00:00:01', model: 'e1000', queues: 2 }, /model "e1000" has a single queue/],
    [{ mac: '02:00:00:00:00:01', model: 'e1000', queues: 1, vhost: 'yes' }, /nics\[0\]\.vhost "yes"/],
    [null, /nics\[0\]\.mac null/],
  ])('refuses %j', (input, msg) => {
    expect(() => checkNic(input, 0)).toThrow(msg);
  });
});

describe('config', () => {
  it('reads tapwire names first, Virtlet names second, defaults last', () => {
    expect(readConfig({})).toEqual({
      key: undefined,
      emulator: '/usr/bin/qemu-system-x86_64',
      fdSocket: '/run/tapwire/fd/fd.sock',
      fetchTimeoutMs: 10_000,
      looped: false,
    });
    expect(readConfig({ VIRTLET_NET_KEY: 'a:b', VIRTLET_EMULATOR: '/v/qemu' })).toMatchObject({
      key: 'a:b',
      emulator: '/v/qemu',
    });
    expect(
      readConfig({ TAPWIRE_NET_KEY: 'x:y', VIRTLET_NET_KEY: 'a:b', TAPWIRE_EMULATOR: '/t', TAPWIRE_FD_SOCKET: '/s' }),
    ).toMatchObject({ key: 'x:y', emulator: '/t', fdSocket: '/s' });
    expect(readConfig({ TAPWIRE_FD_TIMEOUT_MS: '250', TAPWIRE_VMWRAPPER_EXECED: '1' })).toMatchObject({
      fetchTimeoutMs: 250,
      looped: true,
    });
    for (const bad of ['0', '-1', '1.5', '5s', '9999999999'])
      expect(() => readConfig({ TAPWIRE_FD_TIMEOUT_MS: bad })).toThrow(`invalid TAPWIRE_FD_TIMEOUT_MS "${bad}"`);
    expect(readConfig({ TAPWIRE_NET_KEY: '' }).key).toBeUndefined();
  });

  it('hides the token part of the key and strips the key from the emulator env', () => {
    expect(redactKey('sandbox-1:s3cret')).toBe('sandbox-1:<token>');
    expect(emulatorEnv({ TAPWIRE_NET_KEY: 'a:b', VIRTLET_NET_KEY: 'c', PATH: '/bin' })).toEqual({
      PATH: '/bin',
      TAPWIRE_VMWRAPPER_EXECED: '1',
    });
  });
});
