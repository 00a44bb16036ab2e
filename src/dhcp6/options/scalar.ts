// Fixed-size options: Preference (RFC 8415 21.8, 8 bits), Elapsed Time (21.9, 16 bits,
// hundredths of a second), 32-bit times (21.23 Information Refresh Time, 21.24 SOL_MAX_RT),
// and the empty flags Rapid Commit (21.14) and Reconfigure Accept (21.20).
import { checkOption } from '../errors';
import type { Option6Value } from './option';

export class UintOption implements Option6Value {
  constructor(
    readonly size: 1 | 2 | 4,
    readonly value: number,
  ) {}

  static decoder(size: 1 | 2 | 4): (value: Buffer, code: number) => UintOption {
    return (value, code) => {
      checkOption(value.length === size, code, `a ${size * 8}-bit option needs ${size} bytes, got ${value.length}`);
      return new UintOption(size, value.readUIntBE(0, size));
    };
  }

  encode(): Buffer {
    const b = Buffer.alloc(this.size);
    b.writeUIntBE(this.value >>> 0, 0, this.size);
    return b;
  }

  toString(): string {
    return String(this.value);
  }
}

export const Uint8Option6 = { decode: UintOption.decoder(1) };
export const Uint16Option6 = { decode: UintOption.decoder(2) };
export const Uint32Option6 = { decode: UintOption.decoder(4) };

export class EmptyOption implements Option6Value {
  static decode(value: Buffer, code: number): EmptyOption {
    checkOption(value.length === 0, code, `a flag option carries no value, got ${value.length} bytes`);
    return new EmptyOption();
  }

  encode(): Buffer {
    return Buffer.alloc(0);
  }

  toString(): string {
    return 'yes';
  }
}

export class OpaqueOption6 implements Option6Value {
  constructor(readonly bytes: Buffer) {}

  static decode(value: Buffer): OpaqueOption6 {
    return new OpaqueOption6(Buffer.from(value));
  }

  encode(): Buffer {
    return this.bytes;
  }

  toString(): string {
    return this.bytes.toString('hex');
  }
}
