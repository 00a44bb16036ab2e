#!/usr/bin/env node
// vmwrapper entry: the emulator path libvirt (or a runtime) executes instead of QEMU.
// Kept tiny so that even a failure to load the addon ends in one stderr line and exit
// 1, never a stack trace. Environment: TAPWIRE_NET_KEY (or VIRTLET_NET_KEY),
// TAPWIRE_EMULATOR (or VIRTLET_EMULATOR, default /usr/bin/qemu-system-x86_64),
// TAPWIRE_FD_SOCKET (default /run/tapwire/fd/fd.sock), TAPWIRE_FD_TIMEOUT_MS (default 10000).
// See deploy/libvirt/README.md.
/* eslint-disable @typescript-eslint/no-require-imports -- loaded inside try so a load failure is one line */
let run: typeof import('./run').run;
try {
  run = (require('./run') as typeof import('./run')).run;
} catch (e) {
  const key = process.env.TAPWIRE_NET_KEY ?? process.env.VIRTLET_NET_KEY;
  const first = e instanceof Error ? e.message.split('\n')[0] : String(e);
  process.stderr.write(
    `vmwrapper: failed to start${key ? ` for key "${key.replace(/:[^:]*$/, ':<token>')}"` : ''} (fd socket "${process.env.TAPWIRE_FD_SOCKET ?? '/run/tapwire/fd/fd.sock'}"): ${first}\n`,
  );
  process.exit(1);
}
run(process.argv.slice(2), process.env);
