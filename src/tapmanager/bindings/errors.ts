// The typed errors of the binding layer.
import { quote } from '../../util/quote';
import { TapError } from '../errors';
import { IMPLEMENTED_BINDINGS } from './names';

/** A binding tapwire knows by name but does not build yet (passt, macvtap, slirp: issue #18). */
export class BindingNotImplementedError extends TapError {
  constructor(
    field: string,
    readonly binding: string,
  ) {
    super(
      'ENOTSUP',
      `invalid ${field} ${quote(binding)}: the ${binding} binding is not implemented yet (implemented: ${IMPLEMENTED_BINDINGS.join(', ')})`,
      field,
    );
    this.name = 'BindingNotImplementedError';
  }
}

/**
 * One failed undo step: which step, on what, and the errno-style code of the cause.
 * Undo never throws; it returns these, and a teardown that has any keeps the record.
 */
export class UndoError extends Error {
  constructor(
    /** e.g. "delete tap", "restore veth MAC", "remove fence" */
    readonly step: string,
    /** the link, address or route it was about, when there is one */
    readonly target: string | undefined,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'UndoError';
  }

  static of(step: string, target: string | undefined, cause: unknown): UndoError {
    const c = (cause as { code?: unknown } | null)?.code;
    const why = cause instanceof Error ? cause.message : String(cause);
    return new UndoError(
      step,
      target,
      typeof c === 'string' ? c : 'EIO',
      `${step}${target ? ` ${target}` : ''}: ${why}`,
    );
  }
}
