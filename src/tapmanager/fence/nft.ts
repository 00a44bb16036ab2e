// Runs nft command scripts inside a network namespace: reading and removing the fence
// (setup puts it in as a netlink batch, batch.ts), or all of it with TAPWIRE_NFT=lib|cli.
// The way it is done: libnftables (the library the nft CLI is made of) called on a pool
// thread that enters the netns for the call (nftRunIn), ~1.6 ms against ~5.7 ms for a
// process, with the event loop free meanwhile.
// Only when libnftables cannot be loaded (or TAPWIRE_NFT=cli) does it fall back to the CLI,
// `nsenter --net=<path> nft ...` with the script on stdin and a timeout (nsenter execs
// nft, so a timeout kills exactly it). A failure becomes a TapError naming the netns and
// nft's own message.
import { spawn } from 'node:child_process';
import { probeNetns } from '../../net/netns';
import { nftRunIn } from '../../native';
import { TapError } from '../errors';

const TIMEOUT_MS = 10_000;
const MAX_OUTPUT = 4 << 20;

export interface NftResult {
  stdout: string;
}

/** 'ok' if the path is a mounted namespace, else why not ('missing' or 'not-netns'). */
export function netnsState(netnsPath: string): 'ok' | 'missing' | 'not-netns' {
  const st = probeNetns(netnsPath);
  return st === 'ok' ? 'ok' : st === 'ENOENT' ? 'missing' : 'not-netns';
}

/** Throws ENOENT / EINVAL naming the netns unless it is a mounted namespace. */
export function requireNetns(netnsPath: string, verb: string): void {
  const st = netnsState(netnsPath);
  if (st === 'missing')
    throw new TapError('ENOENT', `failed to ${verb} in netns ${netnsPath}: no such file`, 'netnsPath');
  if (st === 'not-netns') {
    throw new TapError('EINVAL', `failed to ${verb} in netns ${netnsPath}: not a network namespace`, 'netnsPath');
  }
}

/** An nft invocation: a script (`nft -f -`) or one command line, with JSON output or not. */
export interface NftCommand {
  script: string;
  json?: boolean;
}

let libUnavailable: string | undefined;

/** Runs the command in the namespace. Rejects with EIO (or ETIMEDOUT for the CLI) on failure. */
export async function nftInNetns(netnsPath: string, cmd: NftCommand, verb: string): Promise<NftResult> {
  if (libUnavailable === undefined && process.env.TAPWIRE_NFT !== 'cli') {
    let r;
    try {
      r = await nftRunIn(netnsPath, cmd.script, cmd.json === true);
    } catch (e) {
      if (!(e as { unavailable?: boolean }).unavailable) {
        throw new TapError('EIO', `failed to ${verb} in netns ${netnsPath}: ${(e as Error).message}`);
      }
      libUnavailable = (e as Error).message; // once: from now on the CLI
    }
    if (r) {
      if (r.rc !== 0) throw new TapError('EIO', `failed to ${verb} in netns ${netnsPath}: nft: ${firstLines(r.error)}`);
      return { stdout: r.output };
    }
  }
  // with -j, nft reads -f input as JSON too: a JSON-output command goes on the command line
  if (cmd.json) return nftCli(netnsPath, ['-j', ...cmd.script.trim().split(/\s+/)], '', verb);
  return nftCli(netnsPath, ['-f', '-'], cmd.script, verb);
}

/** `nft <args>` in the namespace through nsenter, `input` on stdin. */
function nftCli(netnsPath: string, args: string[], input: string, verb: string): Promise<NftResult> {
  return new Promise((resolve, reject) => {
    const fail = (code: string, why: string): void =>
      reject(new TapError(code, `failed to ${verb} in netns ${netnsPath}: ${why}`));
    let child;
    try {
      child = spawn('nsenter', [`--net=${netnsPath}`, 'nft', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      fail('EIO', `cannot run nsenter: ${(e as Error).message}`);
      return;
    }
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    timer.unref();
    child.on('error', (e) => {
      clearTimeout(timer);
      fail('EIO', `cannot run nsenter: ${e.message}`);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) fail('ETIMEDOUT', `nft did not finish within ${TIMEOUT_MS} ms`);
      else if (code === 0) resolve({ stdout });
      else fail('EIO', `nft exited with ${code ?? signal}: nft: ${firstLines(stderr)}`);
    });
    child.stdin.on('error', () => {
      /* nft exited before reading all of stdin; its exit status tells what happened */
    });
    // a failed read of its output ends in 'close' too: no listener-less 'error' may end the daemon
    child.stdout.on('error', () => undefined);
    child.stderr.on('error', () => undefined);
    child.stdin.end(input);
  });
}

function firstLines(s: string): string {
  const t = s.trim().split('\n').slice(0, 6).join(' | ');
  return t.length > 600 ? `${t.slice(0, 600)}...` : t || '(no message)';
}
