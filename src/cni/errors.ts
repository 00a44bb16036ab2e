// Errors of the CNI layer. A plugin's own error (its exit status and the error JSON it
// printed) keeps the plugin's code, msg and details; errors the runtime side detects
// (bad config file, missing plugin binary, unparsable output) use the spec's well-known codes.

/** Well-known CNI error codes (CNI spec, "Error" section). */
export const CNI_CODE = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
} as const;

export class CniError extends Error {
  /** The plugin's code (1-99 spec-defined, 100+ plugin-specific). */
  readonly code: number;
  readonly msg: string;
  readonly details: string;
  /** Plugin type that failed ("bridge"), or "" for a runtime-side failure. */
  readonly plugin: string;
  /** CNI verb the plugin ran (ADD, CHECK, DEL, VERSION). */
  readonly command: string;

  constructor(o: { code: number; msg: string; details?: string; plugin: string; command: string }) {
    const who = o.plugin ? `plugin "${o.plugin}" ` : '';
    super(`CNI ${o.command} ${who}failed (code ${o.code}): ${o.msg}${o.details ? `; ${o.details}` : ''}`);
    this.name = 'CniError';
    this.code = o.code;
    this.msg = o.msg;
    this.details = o.details ?? '';
    this.plugin = o.plugin;
    this.command = o.command;
  }
}

/** A network configuration file that cannot be used; `file` names it. */
export class CniConfigError extends Error {
  readonly code = 'ECNICONFIG';
  constructor(
    readonly file: string,
    why: string,
  ) {
    super(`invalid CNI config "${file}": ${why}`);
    this.name = 'CniConfigError';
  }
}
