// Options kept as bytes: RFC 2132 9.14 client identifier, RFC 3046 relay agent
// information (echoed back verbatim), and anything without a typed class.
import type { OptionValue } from './option';

export class OpaqueOption implements OptionValue {
  constructor(readonly bytes: Buffer) {}

  static decode(value: Buffer): OpaqueOption {
    return new OpaqueOption(Buffer.from(value));
  }

  encode(): Buffer {
    return this.bytes;
  }

  toString(): string {
    return this.bytes.toString('hex').replace(/(..)(?!$)/g, '$1:');
  }
}
