// Runs the nft CLI inside a network namespace: `nsenter --net=<path> nft ...`, the script
// on stdin, with a timeout. nsenter execs nft, so the child's pid is nft's and a timeout
// kills exactly it. A failure becomes a TapError naming the netns and nft's own message.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { TapError } from '../errors';

const NSFS_MAGIC = 0x6e736673;
const TIMEOUT_MS = 10_000;
const MAX_OUTPUT = 4 << 20;

export interface NftResult {
  stdout: string;
}

/** 'ok' if the path is a mounted namespace, else why not ('missing' or 'not-netns'). */
export function netnsState(netnsPath: string): 'ok' | 'missing' | 'not-netns' {
  try {
    return fs.statfsSync(netnsPath).type === NSFS_MAGIC ? 'ok' : 'not-netns';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'not-netns';
  }
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

/** `nft <args>` in the namespace, `input` on stdin. Rejects with EIO (or ETIMEDOUT) on failure. */
export function nftInNetns(netnsPath: string, args: string[], input: string, verb: string): Promise<NftResult> {
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
      else fail('EIO', `nft exited with ${code ?? signal}: ${firstLines(stderr)}`);
    });
    child.stdin.on('error', () => {
      /* nft exited before reading all of stdin; its exit status tells what happened */
    });
    child.stdin.end(input);
  });
}

function firstLines(s: string): string {
  const t = s.trim().split('\n').slice(0, 6).join(' | ');
  return t.length > 600 ? `${t.slice(0, 600)}...` : t || '(no message)';
}
