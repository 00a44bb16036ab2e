// Peers of the daemon's sockets for hostile-socket tests: the unprivileged fixture
// test/fixtures/hostile-peer.js run under setpriv as another uid, fd-holder.js (an
// emulator stand-in that holds fetched tap fds), a raw one-frame exchange as root, and
// the daemon's open fd count.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { closeFd, recvFds, sendFds, unixConnect } from '../../src/native';
import { FrameDecoder } from '../../src/tapmanager/protocol';
import { runtimeTree } from './runtime-tree';

/** run as another uid: from a tree that uid can read (runtime-tree.ts) */
export const PEER = path.join(runtimeTree(), 'test/fixtures/hostile-peer.js');
export const NOBODY = { uid: 65534, gid: 65534 };

export interface PeerSummary {
  connected: number;
  connectErrors: Record<string, number>;
  /** "<reply id>:<code or ok>" -> count */
  frames: Record<string, number>;
  /** connections the daemon closed */
  closed: number;
  /** the first message of each frame kind */
  messages: Record<string, string>;
}

export interface Peer {
  summary: PeerSummary;
  /** ends the peer (its connections close) and waits for it to exit */
  release: () => Promise<void>;
}

const running = new Set<ReturnType<typeof spawn>>();

/**
 * Runs a fixture script (as root, or as `user` through setpriv with no supplementary
 * groups) that prints one JSON line and then holds until its stdin ends; resolves with
 * that line and a release that ends it.
 */
function runFixture<T>(
  script: string,
  args: string[],
  user: { uid: number; gid: number } | undefined,
  what: string,
): Promise<{ first: T; release: () => Promise<void> }> {
  const argv = [process.execPath, script, ...args];
  const child = user
    ? spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', ...argv], {
        stdio: ['pipe', 'pipe', 'pipe'],
      })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  void exited.then(() => running.delete(child));
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      resolve({
        first: JSON.parse(out.slice(0, nl)) as T,
        release: async () => {
          child.stdin.end();
          await exited;
        },
      });
    });
    void exited.then(() => reject(new Error(`${what}: ${err}`)));
  });
}

/** Runs hostile-peer.js as `user` (setpriv, no supplementary groups); resolves with its summary. */
export async function runPeer(args: string[], user = NOBODY): Promise<Peer> {
  const { first, release } = await runFixture<PeerSummary>(
    PEER,
    args,
    user,
    `peer ${args.join(' ')} exited without a summary`,
  );
  return { summary: first, release };
}

/** Kills every peer still running (afterEach). */
export function killPeers(): void {
  for (const c of running) c.kill('SIGKILL');
}

/**
 * One raw frame (any bytes) to a socket, over a blocking socket: returns the first reply
 * frame, or 'closed'. A daemon that refuses a frame closes at once; its reply is still
 * read when our send failed for that (an event-loop socket would drop it).
 */
export function rawRequest(socketPath: string, body: Buffer | object): Record<string, unknown> | 'closed' {
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(payload.length);
  const fd = unixConnect(socketPath, 20_000);
  try {
    try {
      sendFds(fd, Buffer.concat([head, payload]), []);
    } catch {
      /* closed on us: read what it said */
    }
    const decoder = new FrameDecoder();
    for (;;) {
      const { data } = recvFds(fd, 65536, 0);
      if (data.length === 0) return 'closed';
      const frames = decoder.push(data);
      if (frames.length) return frames[0] as Record<string, unknown>;
    }
  } finally {
    closeFd(fd);
  }
}

/** Open fds of a process. */
export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set of a process, in KiB. */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Polls until cond() holds or `ms` passed; returns whether it held (the caller asserts the state, not the time). */
export async function eventually(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

export const FD_HOLDER = path.join(runtimeTree(), 'test/fixtures/fd-holder.js');

export interface Holder {
  result: { ok: true; fds: number } | { ok: false; code: string; message: string };
  /** ends the holder: its fds close with it */
  release: () => Promise<void>;
}

/** Runs fd-holder.js (as root, or as `user`): fetches key's fds and holds them until released. */
export async function runHolder(fdSocket: string, key: string, user?: { uid: number; gid: number }): Promise<Holder> {
  const { first, release } = await runFixture<Holder['result']>(
    FD_HOLDER,
    [fdSocket, key],
    user,
    'fd holder exited without a result',
  );
  return { result: first, release };
}
