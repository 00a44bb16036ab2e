// What every typed option value offers: a static decode(value bytes) on its class, and
// encode() / toString() on the instance. Values are the bytes after code and length.
import type { DecodeError } from '../errors';

export interface OptionValue {
  /** The value bytes (no code, no length); the packet encoder adds those and splits long values. */
  encode(): Buffer;
  toString(): string;
}

export interface OptionType<T extends OptionValue> {
  /** Throws a {@link DecodeError} when the bytes do not fit the type. */
  decode(value: Buffer): T;
}

export type { DecodeError };
