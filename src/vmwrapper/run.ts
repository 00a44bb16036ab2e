// vmwrapper's work: read the config, fetch the tap fds when there is a key, rewrite
// the arguments and execve the emulator with exactly those fds kept. Never returns:
// it either becomes the emulator (same pid, no child) or exits 1 with one line on
// stderr that names the key and the fd socket.
import * as fs from 'node:fs';
import { execve } from '../native';
import { netArgs } from './args';
import { emulatorEnv, readConfig, redactKey, WrapperConfig } from './config';
import { FetchError, fetchFds } from './fetch';
import { INHERITED_VAR, inheritedFds, stillOpen } from './inherited';

/** Exits 1 with one line on stderr (no stack trace). */
export function fail(line: string): never {
  try {
    fs.writeSync(2, `vmwrapper: ${line}\n`);
  } catch {
    /* stderr closed: the exit code still tells */
  }
  process.exit(1);
}

function why(e: unknown): string {
  if (e instanceof FetchError) return e.message;
  const code = (e as { code?: unknown } | null)?.code;
  const msg = e instanceof Error ? e.message.split('\n')[0]! : String(e);
  return typeof code === 'string' && !msg.startsWith(code) ? `${code}: ${msg}` : msg;
}

function where(cfg: WrapperConfig): string {
  return cfg.key === undefined
    ? `(no network key, fd socket "${cfg.fdSocket}")`
    : `(key "${redactKey(cfg.key)}", fd socket "${cfg.fdSocket}")`;
}

function checkEmulator(cfg: WrapperConfig): void {
  try {
    fs.accessSync(cfg.emulator, fs.constants.X_OK);
  } catch (e) {
    fail(`failed to exec emulator "${cfg.emulator}" ${where(cfg)}: ${(e as { code?: string }).code ?? why(e)}`);
  }
}

export function run(args: string[], env: NodeJS.ProcessEnv): never {
  let cfg: WrapperConfig;
  try {
    cfg = readConfig(env);
  } catch (e) {
    return fail(why(e));
  }
  if (cfg.looped) {
    // an outer vmwrapper exec'd us as its emulator: exec'ing on would loop forever
    fail(`emulator "${cfg.emulator}" is vmwrapper itself ${where(cfg)}: set TAPWIRE_EMULATOR to the real QEMU`);
  }
  checkEmulator(cfg);
  let argv = [cfg.emulator, ...args];
  // taken before any fd of ours is opened
  const inherited = inheritedFds(env);
  let fetched: number[] = [];
  if (cfg.key !== undefined) {
    try {
      const got = fetchFds(cfg.fdSocket, cfg.key, cfg.fetchTimeoutMs);
      argv = [...argv, ...netArgs(args, got.nics, got.fds)];
      fetched = got.fds;
    } catch (e) {
      fail(`failed to fetch tap fds ${where(cfg)}: ${why(e)}`);
    }
  }
  try {
    const childEnv = emulatorEnv(env);
    delete childEnv[INHERITED_VAR];
    // an inherited fd closed since it was listed is not ours to keep (a fetched one was reused: kept anyway)
    return execve(cfg.emulator, argv, childEnv, [...stillOpen(inherited), ...fetched]);
  } catch (e) {
    return fail(`failed to exec emulator "${cfg.emulator}" ${where(cfg)}: ${why(e)}`);
  }
}
