// Typed entry to the native addon. Loads build/Release (or build/Debug) and lists
// every place it looked when none works. Arguments are checked here first so a bad
// value fails with a message that names it, before it reaches C++.
import { constants } from 'node:os';
import * as path from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type {
  Binding,
  DumpItem,
  NetlinkReply,
  NftRunResult,
  PeerCred,
  RecvResult,
  TapInfo,
  TapOptions,
} from './binding';

export type { DumpItem, NetlinkReply, NftRunResult, PeerCred, RecvResult, TapInfo, TapOptions } from './binding';

/** What the addon throws for a failed syscall. */
export interface NativeError extends Error {
  errno: number;
  code: string;
  syscall: string;
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as Partial<NativeError>).syscall === 'string';
}

const ERRNO_BY_NUMBER = new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));

/**
 * The code and text of a positive errno as Node's own errors carry them (libuv's names:
 * ENOTSUP for 95), or glibc's name where libuv has none (ELIBACC).
 */
export function errnoName(errno: number): { code: string; text: string } {
  const uv = getSystemErrorMap().get(-errno);
  if (uv) return { code: uv[0], text: uv[1] };
  const code = ERRNO_BY_NUMBER.get(errno) ?? `errno ${errno}`;
  return { code, text: code };
}

function load(): Binding {
  const root = path.resolve(__dirname, '..', '..', ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []));
  const tried: string[] = [];
  for (const flavour of ['Release', 'Debug']) {
    const p = path.join(root, 'build', flavour, 'tapwire.node');
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native module loads by path
      return require(p) as Binding;
    } catch (e) {
      tried.push(`${p}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`cannot load the tapwire native addon (run "npm run build:native"); tried:\n  ${tried.join('\n  ')}`);
}

const native: Binding = load();

const IFNAMSIZ = 16;

function checkFd(name: string, fd: unknown): asserts fd is number {
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new TypeError(`${name} must be a non-negative integer file descriptor (got ${String(fd)})`);
  }
}

function checkIfname(field: string, name: string): void {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) >= IFNAMSIZ) {
    throw new RangeError(`${field} must be 1-15 bytes (IFNAMSIZ), got ${JSON.stringify(name)}`);
  }
}

/** Sends all of data over a Unix stream socket; fds ride on the first byte (SCM_RIGHTS). */
export function sendFds(sockFd: number, data: Buffer, fds: number[]): number {
  checkFd('sockFd', sockFd);
  fds.forEach((fd, i) => checkFd(`fds[${i}]`, fd));
  return native.sendFds(sockFd, data, fds);
}

/** One recvmsg with MSG_CMSG_CLOEXEC; empty data means end of stream. */
export function recvFds(sockFd: number, maxBytes: number, maxFds: number): RecvResult {
  checkFd('sockFd', sockFd);
  return native.recvFds(sockFd, maxBytes, maxFds);
}

/**
 * Blocking connect to a Unix stream socket; returns a close-on-exec fd. With timeoutMs,
 * a send or receive on it that waits longer fails with EAGAIN.
 */
export function unixConnect(socketPath: string, timeoutMs?: number): number {
  return native.unixConnect(socketPath, timeoutMs);
}

/** SO_PEERCRED of a connected Unix socket. */
export function peerCred(fd: number): PeerCred {
  checkFd('fd', fd);
  return native.peerCred(fd);
}

/** SO_NETNS_COOKIE: identifies the namespace a socket was created in. */
export function socketNetnsCookie(fd: number): bigint {
  checkFd('fd', fd);
  return native.socketNetnsCookie(fd);
}

/** SO_NETNS_COOKIE of the calling thread's namespace: inside a withNetns window, the cookie of the namespace entered. */
export function netnsCookie(): bigint {
  return native.netnsCookie();
}

/** A connected AF_UNIX stream pair, both ends close-on-exec and blocking. */
export function unixStreamPair(): [number, number] {
  return native.unixStreamPair();
}

/** Whether the other end of a connected stream socket has closed (poll(2) POLLHUP/POLLRDHUP, no wait). */
export function peerClosed(fd: number): boolean {
  checkFd('fd', fd);
  return native.peerClosed(fd);
}

export function closeFd(fd: number): void {
  checkFd('fd', fd);
  native.closeFd(fd);
}

/**
 * Replaces this process with path. stdio and keepFds lose FD_CLOEXEC, stdio loses
 * O_NONBLOCK, every signal goes back to SIG_DFL and the mask is emptied. Returns only
 * by throwing, after which the process must exit.
 */
export function execve(
  file: string,
  argv: string[],
  env: Record<string, string | undefined>,
  keepFds: number[],
): never {
  keepFds.forEach((fd, i) => checkFd(`keepFds[${i}]`, fd));
  const envList = Object.entries(env)
    .filter((kv): kv is [string, string] => kv[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  return native.execve(file, argv, envList, keepFds);
}

/**
 * Runs fn synchronously with the calling thread in the network namespace netns (a path
 * such as /run/netns/x or an fd), then always returns to the original namespace (the
 * process aborts if it cannot). fn gets an fd of the original namespace, valid only
 * inside the window. fn must not return a promise.
 */
export function withNetns<T>(netns: string | number, fn: (hostNsFd: number) => T): T {
  if (typeof fn !== 'function') throw new TypeError('fn must be a function');
  if (typeof netns !== 'string') checkFd('netns', netns);
  return native.withNetns(netns, fn);
}

/** Inode of the calling thread's network namespace. */
export function netnsInode(): number {
  return native.netnsInode();
}

/**
 * The index of interface `ifname` in the calling thread's namespace (if_nametoindex):
 * inside a withNetns window, a pod's link without a netlink dump. ENODEV when absent.
 */
export function ifIndex(ifname: string): number {
  checkIfname('ifname', ifname);
  return native.ifIndex(ifname);
}

/** Opens (or attaches to) tap `name`: one close-on-exec fd per queue. */
export function openTap(name: string, opts: TapOptions = {}): number[] {
  checkIfname('tap name', name);
  return native.openTap(name, opts);
}

export function tapSetPersist(fd: number, on: boolean): void {
  checkFd('fd', fd);
  native.tapSetPersist(fd, on);
}

export function tapInfo(fd: number): TapInfo {
  checkFd('fd', fd);
  return native.tapInfo(fd);
}

/** mount --bind source target (target must exist); throws with errno, code and both paths. */
export function bindMount(source: string, target: string): void {
  for (const [field, p] of [
    ['source', source],
    ['target', target],
  ] as const) {
    if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\0')) {
      throw new TypeError(`${field} must be an absolute path without NUL bytes (got ${JSON.stringify(p)})`);
    }
  }
  native.bindMount(source, target);
}

/** A UDP socket bound to ifname:port in the calling thread's namespace, for dgram bind({fd}). */
export function udpSocketBoundToDevice(ifname: string, port: number): number {
  checkIfname('ifname', ifname);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be 0..65535, got ${String(port)}`);
  }
  return native.udpSocketBoundToDevice(ifname, port);
}

/**
 * A UDP/IPv6 socket bound to [::]:port on ifname and joined to ff02::1:2 there (the DHCPv6
 * servers' group), in the calling thread's namespace. Watch it with sock6Watch, not dgram
 * (dgram fails to name a link-local peer whose interface is in another netns).
 */
export function udp6SocketBoundToDevice(ifname: string, port: number): number {
  checkIfname('ifname', ifname);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be 0..65535, got ${String(port)}`);
  }
  return native.udp6SocketBoundToDevice(ifname, port);
}

/**
 * A raw ICMPv6 socket on ifname (calling thread's namespace) that receives Router
 * Solicitations only, sends with hop limit 255, and may send from an address the netns
 * does not own (IPV6_FREEBIND). Watch it with sock6Watch; close it with sock6Close.
 */
export function icmp6Open(ifname: string): number {
  checkIfname('ifname', ifname);
  return native.icmp6Open(ifname);
}

/** Calls cb for each datagram the socket receives, from the event loop (no thread); does not keep the process up. */
export function sock6Watch(fd: number, cb: (data: Buffer, from: string, port: number, hopLimit: number) => void): void {
  checkFd('fd', fd);
  native.sock6Watch(fd, cb);
}

/** Stops watching (if watched) and closes the socket. */
export function sock6Close(fd: number): void {
  checkFd('fd', fd);
  native.sock6Close(fd);
}

/** One datagram to [dst]:port on the socket's interface, from src ('::': the kernel chooses). */
export function sock6Send(fd: number, dst: string, port: number, src: string, data: Buffer): void {
  checkFd('fd', fd);
  native.sock6Send(fd, dst, port, src, data);
}

/**
 * Calls cb(length, fromAddress, fromPort) for each datagram the IPv4 UDP socket receives,
 * from the event loop (no thread; does not keep the process up). The datagram is received
 * into buf, which is reused: its bytes are valid only during the call (copy what is kept).
 * fromAddress is the sender's address as an unsigned 32-bit number; length > buf.length
 * means the datagram was cut to buf's length; a negative length is -errno of a failed
 * receive (EAGAIN is never reported).
 */
export function sock4Watch(fd: number, buf: Buffer, cb: (length: number, from: number, port: number) => void): void {
  checkFd('fd', fd);
  native.sock4Watch(fd, buf, cb);
}

/** Stops watching (if watched) and closes the socket. */
export function sock4Close(fd: number): void {
  checkFd('fd', fd);
  native.sock4Close(fd);
}

/**
 * One datagram to dst:port now (never queued): 0 when sent, else the errno of the failed
 * sendto (EAGAIN when the socket's send buffer is full).
 */
export function sock4Send(fd: number, dst: string, port: number, data: Buffer): number {
  return native.sock4Send(fd, dst, port, data);
}

/** How many learned answers a watched IPv4 socket holds (sock4Answer's slots). */
export const SOCK4_ANSWER_SLOTS = 8;
/** The longest request or reply an answer can hold. */
export const SOCK4_ANSWER_MAX_BYTES = 4096;

/** A learned answer: see sock4Answer. */
export interface Sock4Answer {
  /** 0..SOCK4_ANSWER_SLOTS-1: replaces what the slot held */
  slot: number;
  /** the datagram answered (1..4096 bytes; copied) */
  request: Buffer;
  /** what answers it (1..4096 bytes; copied) */
  reply: Buffer;
  to: { address: string; port: number };
  /** [from, to): the bytes in which a datagram may differ from `request` and still be answered */
  vary: [number, number];
  /** [from, to): the bytes of the reply taken from the datagram answered */
  copy: [number, number];
  /** used only within this many ms of its last use (`usedAt` at first); 0: no limit */
  ttlMs: number;
  /** ms since the epoch (Date.now()'s clock) */
  usedAt: number;
}

/**
 * Teaches the socket's watch (sock4Watch) an answer it gives by itself: a datagram of
 * request's length equal to it outside `vary` is answered with reply, its `copy` bytes
 * taken from the datagram, sent to `to`, and the watch's callback is not called. A lapsed
 * answer, or one whose send fails, is left to the callback (whose own send then counts). The addon only compares and
 * copies bytes; which answers hold is the caller's to keep true (sock4Forget).
 */
export function sock4Answer(fd: number, a: Sock4Answer): void {
  checkFd('fd', fd);
  native.sock4Answer(
    fd,
    a.slot,
    a.request,
    a.reply,
    a.to.address,
    a.to.port,
    a.vary[0],
    a.vary[1],
    a.copy[0],
    a.copy[1],
    a.ttlMs,
    a.usedAt,
  );
}

/**
 * What the socket's learned answers did since the last call: out[2i] datagrams answered by
 * slot i, out[2i+1] its last use (ms since the epoch); returns how many in all. out holds
 * 2 * SOCK4_ANSWER_SLOTS numbers.
 */
export function sock4Answered(fd: number, out: Float64Array): number {
  return native.sock4Answered(fd, out);
}

/** Drops the socket's learned answers (closing or watching it again does too). */
export function sock4Forget(fd: number): void {
  checkFd('fd', fd);
  native.sock4Forget(fd);
}

/** The local port a socket is bound to. */
export function socketPort(fd: number): number {
  checkFd('fd', fd);
  return native.socketPort(fd);
}

/** Sends one datagram to a Unix datagram socket ('@name' = abstract), e.g. NOTIFY_SOCKET. */
export function unixDatagramSend(socketPath: string, data: Buffer): void {
  native.unixDatagramSend(socketPath, data);
}

/**
 * Runs an nft command script with libnftables in the calling thread's network namespace
 * (call it inside withNetns). json: JSON output (nft -j). Throws with `unavailable` set
 * when libnftables.so.1 cannot be loaded.
 */
export function nftRun(script: string, json = false): NftRunResult {
  return native.nftRun(script, json);
}

/**
 * nftRun inside the namespace at path `netns`, on a libuv pool thread that enters the
 * namespace for the call and always leaves it (an nftables commit blocks its caller for
 * milliseconds; the event loop goes on meanwhile). Rejects with `unavailable` set when
 * libnftables.so.1 cannot be loaded, or with the failed open/setns of the namespace.
 */
export function nftRunIn(netns: string, script: string, json = false): Promise<NftRunResult> {
  return native.nftRunIn(netns, script, json);
}

/**
 * Sends `messages` (whole netlink messages, back to back) to the kernel in one sendto()
 * from a socket of `protocol` made inside the namespace at path `netns`, on a pool
 * thread, and resolves with every ack and error that came back, in order. The kernel
 * handles one sendto() in the sender's own syscall (an nfnetlink batch is committed or
 * aborted by then), so the replies are all there when it returns. Messages that asked
 * for no ack and succeeded have no reply. Only for requests answered in the sender's
 * syscall: nfnetlink batches, rtnetlink changes (not dumps).
 */
export function netlinkBatchIn(netns: string, protocol: number, messages: Buffer): Promise<NetlinkReply[]> {
  if (typeof netns !== 'string' || netns === '') throw new TypeError('netns must be a path');
  if (!Buffer.isBuffer(messages)) throw new TypeError('messages must be a Buffer');
  return native.netlinkBatchIn(netns, protocol, messages);
}

/**
 * A netlink socket of `protocol` in the calling thread's namespace (inside a withNetns
 * window; it stays in that namespace), for netlinkDump. A close-on-exec fd.
 */
export function netlinkSocketHere(protocol: number): number {
  return native.netlinkSocketHere(protocol);
}

/**
 * One dump on netlink socket `fd`, synchronously: sends `request` (one whole message),
 * reads the answer to NLMSG_DONE and returns its messages back to back (headers included,
 * DONE left out). Throws the kernel's error (a NativeError) if it answers with one, and
 * E2BIG once the answer passes `maxBytes` (the rest unread: the socket is of no further
 * use). A dump is made as it is read, so it blocks only for the kernel's own work.
 */
export function netlinkDump(fd: number, request: Buffer, maxBytes: number): Buffer {
  checkFd('fd', fd);
  if (!Buffer.isBuffer(request)) throw new TypeError('request must be a Buffer');
  if (!(maxBytes >= 0)) throw new RangeError(`maxBytes must be a number >= 0, got ${String(maxBytes)}`);
  return native.netlinkDump(fd, request, maxBytes);
}

/**
 * One netlink dump in each of many namespaces, on one pool thread (one round trip from JS
 * for all of them): each item's namespace entered, a socket of `protocol` made there, its
 * SO_NETNS_COOKIE checked against item.cookie (ESTALE if another namespace is at the
 * path), item.request sent and its answer read to NLMSG_DONE. Resolves with one outcome
 * per item, in order: the answer's messages back to back (headers included, DONE left
 * out), or the NativeError of what failed (the kernel's error, E2BIG past `maxBytes`,
 * ETIMEDOUT for the items not read within `timeoutMs`).
 */
export function netlinkDumpEach(
  items: DumpItem[],
  protocol: number,
  maxBytes: number,
  timeoutMs: number,
): Promise<(Buffer | NativeError)[]> {
  if (!Array.isArray(items)) throw new TypeError('items must be an array');
  return native.netlinkDumpEach(items, protocol, maxBytes, timeoutMs) as Promise<(Buffer | NativeError)[]>;
}
