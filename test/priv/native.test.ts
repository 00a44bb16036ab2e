// The native addon, each export shown working against the real kernel.
import { execFileSync, spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import * as native from '../../src/native';
import { NETLINK_NETFILTER, NFPROTO_BRIDGE, NftBatchWriter, NLM_F_CREATE } from '../../src/net/nfnl';
import { createNetns, removeAllNetns, TestNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

const FIXTURE = path.resolve(__dirname, '../fixtures/recv-and-exec.js');

function runChild(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, pid: child.pid! }));
  });
}

/** A Unix socket server that sends `payload` + the given fds to its first client. */
async function fdServer(dir: string, payload: Buffer, fds: number[]): Promise<{ path: string; server: net.Server }> {
  const sockPath = path.join(dir, 'fd.sock');
  const server = net.createServer((conn) => {
    const fd = (conn as unknown as { _handle: { fd: number } })._handle.fd;
    native.sendFds(fd, payload, fds);
    conn.end();
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  return { path: sockPath, server };
}

describePrivileged('native addon', () => {
  let ns: TestNetns;
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-native-'));
  });
  afterEach(() => removeAllNetns());
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('withNetns runs fn in the target namespace and always comes back', () => {
    ns = createNetns('win');
    const host = native.netnsInode();
    const target = fs.statSync(ns.path).ino;
    const inside = native.withNetns(ns.path, (hostFd) => {
      expect(fs.fstatSync(hostFd).ino).toBe(host);
      return native.netnsInode();
    });
    expect(inside).toBe(target);
    expect(native.netnsInode()).toBe(host);

    expect(() =>
      native.withNetns(ns.path, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(native.netnsInode()).toBe(host);

    expect(() => native.withNetns(ns.path, () => Promise.resolve(1))).toThrow(/synchronous/);
    expect(native.netnsInode()).toBe(host);

    const fd = fs.openSync(ns.path, 'r');
    try {
      expect(native.withNetns(fd, () => native.netnsInode())).toBe(target);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('withNetns refuses what is not a network namespace, naming it', () => {
    expect(() => native.withNetns('/etc/hostname', () => 0)).toThrow(
      expect.objectContaining({ code: 'EINVAL', syscall: 'setns', netns: '/etc/hostname', notNetns: true }),
    );
    expect(() => native.withNetns('/run/netns/twt-does-not-exist', () => 0)).toThrow(
      expect.objectContaining({ code: 'ENOENT', netns: '/run/netns/twt-does-not-exist' }),
    );
  });

  it('nftRunIn runs libnftables on pool threads inside the namespace, and every thread comes back', async () => {
    const a = createNetns('nfta');
    const b = createNetns('nftb');
    const host = native.netnsInode();
    const threadNetns = (): number[] =>
      fs.readdirSync('/proc/self/task').map((t) => fs.statSync(`/proc/self/task/${t}/ns/net`).ino);
    // more jobs than pool threads, in two namespaces at once
    const jobs = Array.from({ length: 24 }, (_, i) =>
      native.nftRunIn(i % 2 ? a.path : b.path, `add table bridge twt_${i}`, false),
    );
    expect((await Promise.all(jobs)).every((r) => r.rc === 0)).toBe(true);
    const tables = async (p: string) =>
      (await native.nftRunIn(p, 'list tables bridge', false)).output.match(/twt_\d+/g)?.length ?? 0;
    expect([await tables(a.path), await tables(b.path)]).toEqual([12, 12]);
    expect(native.netnsInode()).toBe(host);
    expect(new Set(threadNetns())).toEqual(new Set([host]));
    expect(native.nftRun('list tables bridge').output).not.toContain('twt_'); // the host has none

    const bad = await native.nftRunIn(a.path, 'add table bridge', false);
    expect(bad.rc).not.toBe(0);
    expect(bad.error).toContain('syntax error');
    await expect(native.nftRunIn('/etc/hostname', 'list tables', false)).rejects.toMatchObject({
      code: 'EINVAL',
      syscall: 'setns',
      netns: '/etc/hostname',
      notNetns: true,
    });
    await expect(native.nftRunIn('/run/netns/twt-does-not-exist', 'list tables', false)).rejects.toMatchObject({
      code: 'ENOENT',
      netns: '/run/netns/twt-does-not-exist',
    });
  });

  it('libnftables runs while the process holds over FD_SETSIZE fds (its select() would abort the process)', async () => {
    const a = createNetns('nftfd');
    const held: number[] = [];
    try {
      // fds 0-1100 or so taken: the lowest free one is over 1024, as in a daemon of ~500 sandboxes
      while (held.length < 1100) held.push(fs.openSync('/dev/null', 'r'));
      expect(Math.max(...held)).toBeGreaterThan(1024);
      expect((await native.nftRunIn(a.path, 'add table bridge twt_fds', false)).rc).toBe(0);
      expect((await native.nftRunIn(a.path, 'list tables bridge', false)).output).toContain('twt_fds');
      expect(native.nftRun('list tables bridge').rc).toBe(0);
      const fd = fs.openSync('/dev/null', 'r'); // the library's own fds were not ours: nothing left open
      held.push(fd);
      expect(fd).toBe(Math.max(...held.slice(0, -1)) + 1);
    } finally {
      for (const fd of held) fs.closeSync(fd);
    }
  });

  it('udpSocketBoundToDevice made in a window lives in the pod netns and works under dgram', async () => {
    ns = createNetns('udp');
    const hostProbe = native.udpSocketBoundToDevice('lo', 0);
    const hostCookie = native.socketNetnsCookie(hostProbe);
    native.closeFd(hostProbe);
    const [a, b, podCookie] = native.withNetns(ns.path, () => {
      const probe = native.udpSocketBoundToDevice('lo', 0);
      const cookie = native.socketNetnsCookie(probe);
      native.closeFd(probe);
      return [native.udpSocketBoundToDevice('lo', 0), native.udpSocketBoundToDevice('lo', 0), cookie];
    });
    expect(native.socketNetnsCookie(a)).toBe(podCookie);
    expect(podCookie).not.toBe(hostCookie);

    const rx = dgram.createSocket('udp4');
    const tx = dgram.createSocket('udp4');
    await new Promise<void>((r) => rx.bind({ fd: a }, r));
    await new Promise<void>((r) => tx.bind({ fd: b }, r));
    const got = new Promise<string>((r) => rx.once('message', (m) => r(m.toString())));
    tx.send('hello', rx.address().port, '127.0.0.1');
    expect(await got).toBe('hello');
    rx.close();
    tx.close();
    expect(() => native.udpSocketBoundToDevice('no-such-if0', 0)).toThrow(
      expect.objectContaining({ code: 'ENODEV', ifname: 'no-such-if0' }),
    );
  });

  it('netlinkBatchIn sends a batch from inside the namespace and returns every ack and error', async () => {
    ns = createNetns('nlb');
    const batch = (type: number, name: string) => {
      const w = new NftBatchWriter(NFPROTO_BRIDGE, 100);
      w.begin(type, type === 0 ? NLM_F_CREATE : 0, `${type} ${name}`);
      w.str(1 /* NFTA_TABLE_NAME */, name);
      w.close();
      return w.finish();
    };
    const host = native.netnsInode();
    const add = batch(0 /* NFT_MSG_NEWTABLE */, 'twt_nlb');
    expect(await native.netlinkBatchIn(ns.path, NETLINK_NETFILTER, add.buf)).toEqual([{ seq: 101, error: 0 }]); // the last message asks for the ack;
    expect(ns.exec('nft', ['list', 'tables'])).toContain('table bridge twt_nlb');
    expect(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' })).not.toContain('twt_nlb');
    const del = batch(2 /* NFT_MSG_DELTABLE */, 'twt_nothere');
    const [reply] = await native.netlinkBatchIn(ns.path, NETLINK_NETFILTER, del.buf);
    expect(reply).toMatchObject({ seq: 101, error: 2 /* ENOENT */ });
    expect(native.netnsInode()).toBe(host);
    await expect(native.netlinkBatchIn('/etc/hostname', NETLINK_NETFILTER, add.buf)).rejects.toMatchObject({
      code: 'EINVAL',
      notNetns: true,
    });
    expect(() => native.netlinkBatchIn(ns.path, 99, add.buf)).toThrow(/protocol/);
    expect(() => native.netlinkBatchIn(ns.path, NETLINK_NETFILTER, Buffer.alloc(4))).toThrow(/at least one/);
  });

  it('ifIndex reads an index in the window, naming what is missing', () => {
    ns = createNetns('idx');
    ns.ip('link', 'add', 'twbr9', 'type', 'bridge');
    const want = Number(/^(\d+):/.exec(ns.ip('-o', 'link', 'show', 'twbr9'))![1]);
    expect(native.withNetns(ns.path, () => [native.ifIndex('lo'), native.ifIndex('twbr9')])).toEqual([1, want]);
    expect(() => native.withNetns(ns.path, () => native.ifIndex('twnothere'))).toThrow(
      expect.objectContaining({ code: 'ENODEV', syscall: 'if_nametoindex', ifname: 'twnothere' }),
    );
    expect(() => native.ifIndex('x'.repeat(16))).toThrow(/1-15 bytes/);
  });

  it('openTap creates taps in the window, with vnet header, queues and persistence', () => {
    ns = createNetns('tap');
    const fds = native.withNetns(ns.path, () => native.openTap('tw0', { vnetHdr: true }));
    expect(fds).toHaveLength(1);
    expect(native.tapInfo(fds[0]!)).toEqual({ name: 'tw0', vnetHdr: true, multiQueue: false, persist: false });
    expect(ns.ip('-o', 'link', 'show', 'tw0')).toContain('tw0');
    native.closeFd(fds[0]!);
    expect(ns.ip('-o', 'link', 'show')).not.toContain('tw0');

    const mq = native.withNetns(ns.path, () => native.openTap('tw1', { multiQueue: true, queues: 3, persist: true }));
    expect(mq).toHaveLength(3);
    mq.forEach((fd) => native.closeFd(fd));
    expect(ns.ip('-o', 'link', 'show', 'tw1')).toContain('tw1'); // persistent: outlives its fds
    const again = native.withNetns(ns.path, () => native.openTap('tw1', { multiQueue: true, queues: 1 }));
    expect(native.tapInfo(again[0]!).persist).toBe(true);
    native.tapSetPersist(again[0]!, false);
    native.closeFd(again[0]!);
    expect(ns.ip('-o', 'link', 'show')).not.toContain('tw1');

    expect(() => native.openTap('a-name-of-16-byt')).toThrow(/1-15 bytes/);
    expect(() => native.withNetns(ns.path, () => native.openTap('tw2', { queues: 2 }))).toThrow(/multiQueue/);
  });

  it('a tap opened in a fresh netns survives SCM_RIGHTS and execve into a second process', async () => {
    ns = createNetns('pass');
    const [tap] = native.withNetns(ns.path, () => native.openTap('twpass0', { vnetHdr: true }));
    const { path: sockPath, server } = await fdServer(tmp, Buffer.from('tap twpass0\n'), [tap!]);
    try {
      const script = [
        'echo "fds=$TAPWIRE_FDS msg=$TAPWIRE_MSG"',
        'ls -l /proc/self/fd/',
        'grep -E "^Sig(Ign|Blk)" /proc/self/status',
        'grep flags /proc/self/fdinfo/1',
      ].join('; ');
      const res = await runChild([sockPath, '/bin/sh', '-c', script]);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      const fdNum = /fds=(\d+)/.exec(res.stdout)?.[1];
      expect(fdNum).toBeDefined();
      expect(res.stdout).toContain('msg=tap twpass0');
      expect(res.stdout).toMatch(new RegExp(`\\s${fdNum} -> /dev/net/tun`));
      // Node ignores SIGPIPE; the exec'd program must not inherit that, nor a mask.
      expect(res.stdout).toMatch(/SigIgn:\s+0+\n/);
      expect(res.stdout).toMatch(/SigBlk:\s+0+\n/);
      // stdout lost O_NONBLOCK (04000) on the way.
      const flags = parseInt(/flags:\s+(\d+)/.exec(res.stdout)![1]!, 8);
      expect(flags & 0o4000).toBe(0);
      // stdio and the passed tap stay open; the child's own socket (close-on-exec) is gone
      const open = res.stdout
        .split('\n')
        .map((l) => / (\d+) -> (.*)$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null);
      expect(open.map((m) => m[1])).toEqual(expect.arrayContaining(['0', '1', '2', fdNum]));
      expect(open.filter((m) => Number(m[1]) > 2 && m[2]!.startsWith('socket:'))).toEqual([]);
    } finally {
      server.close();
      native.closeFd(tap!);
    }
  });

  it('recvFds closes what arrived and throws when control data is truncated', async () => {
    const sockPath = path.join(tmp, 'trunc.sock');
    const pipes = [fs.openSync('/dev/null', 'r'), fs.openSync('/dev/null', 'r'), fs.openSync('/dev/null', 'r')];
    const server = net.createServer((conn) => {
      native.sendFds((conn as unknown as { _handle: { fd: number } })._handle.fd, Buffer.from('x'), pipes);
      conn.end();
    });
    await new Promise<void>((r) => server.listen(sockPath, r));
    try {
      const devNulls = (): number =>
        fs.readdirSync('/proc/self/fd').filter((f) => {
          try {
            return fs.readlinkSync(`/proc/self/fd/${f}`) === '/dev/null';
          } catch {
            return false;
          }
        }).length;
      const before = devNulls();
      const fd = await new Promise<number>((resolve) => setImmediate(() => resolve(native.unixConnect(sockPath))));
      await new Promise((r) => setTimeout(r, 50));
      expect(() => native.recvFds(fd, 16, 1)).toThrow(expect.objectContaining({ code: 'EMSGSIZE', truncated: true }));
      native.closeFd(fd);
      expect(devNulls()).toBe(before);
    } finally {
      server.close();
      pipes.forEach((p) => fs.closeSync(p));
    }
  });

  it('unixConnect and peerCred identify the process at the other end', async () => {
    const sockPath = path.join(tmp, 'cred.sock');
    let serverSide: PeerCredHolder | undefined;
    type PeerCredHolder = { pid: number; uid: number; gid: number };
    const accepted = new Promise<void>((resolve) => {
      const server = net.createServer((conn) => {
        serverSide = native.peerCred((conn as unknown as { _handle: { fd: number } })._handle.fd);
        conn.end();
        server.close();
        resolve();
      });
      server.listen(sockPath);
    });
    await new Promise((r) => setTimeout(r, 20));
    const fd = native.unixConnect(sockPath);
    expect(native.peerCred(fd)).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    await accepted;
    expect(serverSide).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    native.closeFd(fd);
    expect(() => native.unixConnect(path.join(tmp, 'missing.sock'))).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'connect' }),
    );
  });

  it('unixDatagramSend delivers one datagram (as to NOTIFY_SOCKET)', async () => {
    const sockPath = path.join(tmp, 'notify.sock');
    const { spawn: sp } = await import('node:child_process');
    // a Unix datagram reader: python3 is on every machine tapwire runs its tests on
    const reader = sp('python3', [
      '-c',
      `import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); print('ready', flush=True)
print(s.recv(100).decode(), flush=True)`,
      sockPath,
    ]);
    let out = '';
    await new Promise<void>((r) =>
      reader.stdout.on('data', (d: Buffer) => ((out += d.toString()), out.includes('ready') && r())),
    );
    native.unixDatagramSend(sockPath, Buffer.from('READY=1'));
    await new Promise((r) => reader.on('close', r));
    expect(out).toContain('READY=1');
    expect(() => native.unixDatagramSend(path.join(tmp, 'none.sock'), Buffer.from('x'))).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'sendto' }),
    );
  });

  it('execve fails cleanly, naming the path, when the target cannot run', () => {
    expect(() => native.execve('/nonexistent/qemu', ['qemu'], {}, [])).toThrow(
      expect.objectContaining({ code: 'ENOENT', path: '/nonexistent/qemu' }),
    );
    expect(() => native.sendFds(-1, Buffer.from('x'), [])).toThrow(TypeError);
  });

  it('bindMount pins a netns at a file; a missing target or a relative path is refused, naming it', () => {
    const pin = path.join(tmp, 'pinned-netns');
    fs.writeFileSync(pin, '');
    const source = `/proc/${process.pid}/ns/net`;
    try {
      native.bindMount(source, pin);
      const a = fs.statSync(source);
      const b = fs.statSync(pin);
      expect([b.dev, b.ino]).toEqual([a.dev, a.ino]);
    } finally {
      execFileSync('umount', [pin]);
    }
    expect(fs.statSync(pin).size).toBe(0); // the plain file again
    expect(() => native.bindMount(source, path.join(tmp, 'missing'))).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'mount', target: path.join(tmp, 'missing') }),
    );
    expect(() => native.bindMount('proc/self/ns/net', pin)).toThrow(/source must be an absolute path/);
  });
});

describePrivileged('native: unix stream pair', () => {
  it('unixStreamPair is connected both ways; peerClosed says when the other end is gone', () => {
    const [a, b] = native.unixStreamPair();
    try {
      expect(native.peerClosed(a)).toBe(false);
      fs.writeSync(a, 'ping');
      const buf = Buffer.alloc(8);
      expect(buf.subarray(0, fs.readSync(b, buf)).toString()).toBe('ping');
      expect(native.peerClosed(a)).toBe(false);
      native.closeFd(b);
      expect(native.peerClosed(a)).toBe(true);
    } finally {
      native.closeFd(a);
    }
  });
});
