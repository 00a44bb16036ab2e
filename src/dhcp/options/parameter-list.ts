// RFC 2132 9.8: parameter request list, one option code per byte, in the client's
// order of preference.
import { checkOption } from '../errors';
import type { OptionValue } from './option';

export class ParameterListOption implements OptionValue {
  constructor(readonly codes: readonly number[]) {}

  static decode(value: Buffer): ParameterListOption {
    checkOption(value.length > 0, 55, 'parameter request list must not be empty');
    const codes = new Array<number>(value.length); // a loop: spreading a Buffer runs its iterator
    for (let i = 0; i < value.length; i++) codes[i] = value[i]!;
    return new ParameterListOption(codes);
  }

  encode(): Buffer {
    return Buffer.from(this.codes);
  }

  has(code: number): boolean {
    return this.codes.includes(code);
  }

  toString(): string {
    return this.codes.join(',');
  }
}
