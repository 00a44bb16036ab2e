// Finding a plugin binary on the search path and running it the way the CNI spec says:
// CNI_* in the environment, the config on stdin, the result (or an error JSON) on stdout.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../util/log';
import { silentLogger } from '../util/log';
import { CNI_CODE, CniError } from './errors';

export const DEFAULT_BIN_DIRS = ['/opt/cni/bin'];

export interface ExecOptions {
  /** Plugin search path, in order (CNI_PATH). */
  binDirs: string[];
  /**
   * Run plugins inside this network namespace (via nsenter) instead of the caller's own.
   * The "node" side of what they build lands there; tests use it to keep the root netns clean.
   */
  hostNetns?: string;
  timeoutMs?: number;
  logger?: Logger;
}

export interface PluginEnv {
  command: 'ADD' | 'CHECK' | 'DEL' | 'VERSION';
  containerId: string;
  /** "" when the namespace is gone (DEL). */
  netns: string;
  ifName: string;
  args: string;
}

/** The first executable `type` on the search path. */
export function findPlugin(type: string, binDirs: string[], command = 'ADD'): string {
  for (const dir of binDirs) {
    const p = path.join(dir, type);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  throw new CniError({
    code: CNI_CODE.INVALID_CONFIG,
    msg: `failed to find plugin "${type}" in path [${binDirs.join(' ')}]`,
    plugin: type,
    command,
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Runs one plugin. Resolves with its parsed stdout (undefined when empty); rejects with CniError. */
export function execPlugin(o: ExecOptions, type: string, env: PluginEnv, stdin: Buffer): Promise<unknown> {
  const log = o.logger ?? silentLogger;
  const file = findPlugin(type, o.binDirs, env.command);
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CNI_')) childEnv[k] = v;
  Object.assign(childEnv, {
    CNI_COMMAND: env.command,
    CNI_CONTAINERID: env.containerId,
    CNI_NETNS: env.netns,
    CNI_IFNAME: env.ifName,
    CNI_ARGS: env.args,
    CNI_PATH: o.binDirs.join(':'),
  });
  const [cmd, argv] = o.hostNetns ? ['nsenter', [`--net=${o.hostNetns}`, '--', file]] : [file, []];
  log.debug('exec plugin', {
    plugin: type,
    file,
    command: env.command,
    containerId: env.containerId,
    netns: env.netns,
  });
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs ?? 120_000);
    timer.unref();
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => {}); // a plugin may exit without reading stdin
    // a failed read of its output ends in 'close' too: no listener-less 'error' may end the service
    child.stdout.on('error', () => {});
    child.stderr.on('error', () => {});
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(
        new CniError({
          code: CNI_CODE.IO_FAILURE,
          msg: `failed to run "${file}": ${e.message}`,
          plugin: type,
          command: env.command,
        }),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8').trim();
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (stderr) log.debug('plugin stderr', { plugin: type, stderr });
      if (code === 0) {
        if (stdout === '') return resolve(undefined);
        const v = parseJson(stdout);
        if (v === undefined) {
          return reject(
            new CniError({
              code: CNI_CODE.DECODE_FAILURE,
              msg: `output is not JSON: ${stdout.slice(0, 300)}`,
              plugin: type,
              command: env.command,
            }),
          );
        }
        return resolve(v);
      }
      const e = parseJson(stdout) as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
      if (e && typeof e === 'object' && typeof e.code === 'number' && typeof e.msg === 'string') {
        return reject(
          new CniError({
            code: e.code,
            msg: e.msg,
            details: typeof e.details === 'string' ? e.details : '',
            plugin: type,
            command: env.command,
          }),
        );
      }
      const how = timedOut
        ? `timed out after ${o.timeoutMs ?? 120_000} ms`
        : signal
          ? `killed by ${signal}`
          : `exited with status ${code}`;
      reject(
        new CniError({
          code: CNI_CODE.IO_FAILURE,
          msg: `plugin ${how} without an error JSON`,
          details: (stderr || stdout).slice(0, 500),
          plugin: type,
          command: env.command,
        }),
      );
    });
    child.stdin.end(stdin);
  });
}
