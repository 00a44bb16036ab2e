// Unsigned integer options: 8-bit (RFC 2132 9.3 overload), 16-bit (5.1 interface MTU,
// 9.10 maximum message size) and 32-bit durations in seconds (9.2 lease time, 9.11
// renewal T1, 9.12 rebinding T2).
import { checkOption } from '../errors';
import type { OptionValue } from './option';

export class Uint8Option implements OptionValue {
  constructor(readonly value: number) {}

  static decode(value: Buffer): Uint8Option {
    checkOption(value.length === 1, undefined, `an 8-bit option needs 1 byte, got ${value.length}`);
    return new Uint8Option(value[0]!);
  }

  encode(): Buffer {
    return Buffer.from([this.value & 0xff]);
  }

  toString(): string {
    return String(this.value);
  }
}

export class Uint16Option implements OptionValue {
  constructor(readonly value: number) {}

  static decode(value: Buffer): Uint16Option {
    checkOption(value.length === 2, undefined, `a 16-bit option needs 2 bytes, got ${value.length}`);
    return new Uint16Option(value.readUInt16BE(0));
  }

  encode(): Buffer {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(this.value, 0);
    return b;
  }

  toString(): string {
    return String(this.value);
  }
}

/** Seconds as an unsigned 32-bit number; 0xffffffff means infinity (RFC 2131 3.3). */
export class DurationOption implements OptionValue {
  constructor(readonly seconds: number) {}

  static decode(value: Buffer): DurationOption {
    checkOption(value.length === 4, undefined, `a duration needs 4 bytes, got ${value.length}`);
    return new DurationOption(value.readUInt32BE(0));
  }

  encode(): Buffer {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(this.seconds, 0);
    return b;
  }

  toString(): string {
    return this.seconds === 0xffffffff ? 'infinite' : `${this.seconds}s`;
  }
}
