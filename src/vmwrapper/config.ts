// vmwrapper's settings, all from the environment (libvirt passes them with
// <qemu:commandline><qemu:env/>), with Virtlet's names accepted for drop-in use.
import { DEFAULT_FD_SOCKET } from '../tapmanager/protocol';

export const DEFAULT_EMULATOR = '/usr/bin/qemu-system-x86_64';

/** Variables that carry the network key; stripped from the emulator's environment. */
export const KEY_VARS = ['TAPWIRE_NET_KEY', 'VIRTLET_NET_KEY'] as const;

export interface WrapperConfig {
  /** undefined: no network to attach, exec the emulator untouched (libvirt's probes). */
  key: string | undefined;
  emulator: string;
  fdSocket: string;
}

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
  };
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
  return out;
}
