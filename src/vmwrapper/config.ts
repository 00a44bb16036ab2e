// vmwrapper's settings, all from the environment (libvirt passes them with
// <qemu:commandline><qemu:env/>), with Virtlet's names accepted for drop-in use.
import { DEFAULT_FD_SOCKET } from '../tapmanager/protocol';
import { DEFAULT_FETCH_TIMEOUT_MS } from './fetch';

export const DEFAULT_EMULATOR = '/usr/bin/qemu-system-x86_64';

/** Variables that carry the network key; stripped from the emulator's environment. */
export const KEY_VARS = ['TAPWIRE_NET_KEY', 'VIRTLET_NET_KEY'] as const;

/** Set in the emulator's environment: a vmwrapper that finds it was exec'd by itself. */
export const LOOP_VAR = 'TAPWIRE_VMWRAPPER_EXECED';

export interface WrapperConfig {
  /** undefined: no network to attach, exec the emulator untouched (libvirt's probes). */
  key: string | undefined;
  emulator: string;
  fdSocket: string;
  /** TAPWIRE_FD_TIMEOUT_MS: how long to wait for the daemon's reply */
  fetchTimeoutMs: number;
  /** the emulator is vmwrapper itself (LOOP_VAR was set by an outer vmwrapper) */
  looped: boolean;
}

export class ConfigError extends Error {}

function pick(env: NodeJS.ProcessEnv, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

export function readConfig(env: NodeJS.ProcessEnv): WrapperConfig {
  return {
    key: pick(env, ...KEY_VARS),
    emulator: pick(env, 'TAPWIRE_EMULATOR', 'VIRTLET_EMULATOR') ?? DEFAULT_EMULATOR,
    fdSocket: pick(env, 'TAPWIRE_FD_SOCKET') ?? DEFAULT_FD_SOCKET,
    fetchTimeoutMs: timeout(pick(env, 'TAPWIRE_FD_TIMEOUT_MS')),
    looped: env[LOOP_VAR] === '1',
  };
}

function timeout(v: string | undefined): number {
  if (v === undefined) return DEFAULT_FETCH_TIMEOUT_MS;
  const n = /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!(n > 0)) throw new ConfigError(`invalid TAPWIRE_FD_TIMEOUT_MS ${JSON.stringify(v)}: want milliseconds > 0`);
  return n;
}

/** The key as it may appear in logs: "<sandboxId>:<token>" keeps the sandbox id, hides the token. */
export function redactKey(key: string): string {
  const sep = key.lastIndexOf(':');
  return sep > 0 ? `${key.slice(0, sep)}:<token>` : key;
}

/** The emulator's environment: ours minus the network key. */
export function emulatorEnv(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (const k of KEY_VARS) delete out[k];
  out[LOOP_VAR] = '1';
  return out;
}
