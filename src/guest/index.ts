// tapwire's own guest: build the image (build.ts), make its kernel command line
// (cmdline.ts) and QEMU arguments (qemu.ts), boot it and judge its console (boot.ts,
// report.ts).
export { BootOptions, BootResult, bootGuest, followConsole, GuestRun, startGuest } from './boot';
export { ensureGuest, GuestImage, GuestManifest } from './build';
export { cacheRoot } from './cache';
export { BASE_CMDLINE, GuestChecks, guestCmdline } from './cmdline';
export { GuestError, GuestErrorCode } from './errors';
export { QEMU, QEMU_NIC_MODELS, QemuNic, QemuNicModel, QemuOptions, qemuArgs } from './qemu';
export {
  Expect,
  GuestLease,
  GuestLine,
  GuestReport,
  LINE_PREFIX,
  parseConsole,
  parseLine,
  verdict,
  Verdict,
} from './report';
