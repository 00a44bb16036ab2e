// Identity associations and the address inside them (RFC 8415 21.4-21.6, 21.21):
//   IA_NA   (3):  IAID(4) T1(4) T2(4) IA_NA-options
//   IA_TA   (4):  IAID(4) IA_TA-options
//   IAADDR  (5):  address(16) preferred-lifetime(4) valid-lifetime(4) IAaddr-options
//   IA_PD   (25): IAID(4) T1(4) T2(4) IA_PD-options
// Each holds its own option area; decode reads it (so a malformed nested option makes the
// whole IA malformed) and keeps the raw list, typed by the accessors.
import { ipFromBuffer, ipToBuffer } from '../../net/addr-text';
import { Opt6 } from '../constants';
import { checkOption } from '../errors';
import type { Option6Value } from './option';
import { StatusCodeOption } from './status-code';
import { encodeOptions, optionsSize, readOptions, writeOptions, type RawOption } from './wire';

function statusOf(options: readonly RawOption[]): StatusCodeOption | undefined {
  const raw = options.find((o) => o.code === Opt6.STATUS_CODE);
  return raw ? StatusCodeOption.decode(raw.value) : undefined;
}

export class IaAddrOption implements Option6Value {
  // the address as text or as its 16 bytes, whichever it was made from; the other on
  // demand (a server compares bytes and copies them: the text is for logs and tests)
  private text: string | undefined;
  private raw: Buffer | undefined;

  constructor(
    address: string | Buffer,
    readonly preferred: number,
    readonly valid: number,
    readonly options: readonly RawOption[] = [],
  ) {
    if (typeof address === 'string') this.text = address;
    else this.raw = address;
  }

  static decode(value: Buffer): IaAddrOption {
    checkOption(value.length >= 24, Opt6.IAADDR, `an IA address needs at least 24 bytes, got ${value.length}`);
    const options = readOptions(value, 24, value.length, 'IAADDR');
    const a = new IaAddrOption(value.subarray(0, 16), value.readUInt32BE(16), value.readUInt32BE(20), options);
    void a.status; // decodes a nested status code, or throws
    return a;
  }

  /** RFC 5952 text */
  get address(): string {
    return (this.text ??= ipFromBuffer(this.raw!));
  }

  /** the 16 bytes */
  get bytes(): Buffer {
    return (this.raw ??= ipToBuffer(this.text!));
  }

  get status(): StatusCodeOption | undefined {
    return statusOf(this.options);
  }

  encode(): Buffer {
    const b = Buffer.allocUnsafe(24 + optionsSize(this.options)); // every byte written below
    this.bytes.copy(b, 0);
    b.writeUInt32BE(this.preferred >>> 0, 16);
    b.writeUInt32BE(this.valid >>> 0, 20);
    writeOptions(this.options, b, 24);
    return b;
  }

  toString(): string {
    const st = this.status;
    return `${this.address} pref=${this.preferred} valid=${this.valid}${st ? ` status=${st.toString()}` : ''}`;
  }
}

/** IA_NA and IA_PD share a shape; `code` tells them apart (IA_TA has no T1/T2: see IaTaOption). */
export class IaOption implements Option6Value {
  constructor(
    readonly code: number,
    readonly iaid: number,
    readonly t1: number,
    readonly t2: number,
    readonly options: readonly RawOption[] = [],
  ) {}

  static decode(value: Buffer, code: number): IaOption {
    checkOption(value.length >= 12, code, `an IA needs at least 12 bytes, got ${value.length}`);
    const options = readOptions(value, 12, value.length, code === Opt6.IA_PD ? 'IA_PD' : 'IA_NA');
    const ia = new IaOption(code, value.readUInt32BE(0), value.readUInt32BE(4), value.readUInt32BE(8), options);
    if (code === Opt6.IA_NA) void ia.addresses; // decodes the nested addresses, or throws
    void ia.status;
    return ia;
  }

  private decoded: IaAddrOption[] | undefined;

  /** The IAADDR options inside an IA_NA (none for an IA_PD, whose IAPREFIXes are not read); decoded once. */
  get addresses(): IaAddrOption[] {
    if (this.code !== Opt6.IA_NA) return [];
    return (this.decoded ??= this.options
      .filter((o) => o.code === Opt6.IAADDR)
      .map((o) => IaAddrOption.decode(o.value)));
  }

  get status(): StatusCodeOption | undefined {
    return statusOf(this.options);
  }

  encode(): Buffer {
    const b = Buffer.allocUnsafe(12 + optionsSize(this.options)); // every byte written below
    b.writeUInt32BE(this.iaid >>> 0, 0);
    b.writeUInt32BE(this.t1 >>> 0, 4);
    b.writeUInt32BE(this.t2 >>> 0, 8);
    writeOptions(this.options, b, 12);
    return b;
  }

  toString(): string {
    const parts = [`iaid=${this.iaid} t1=${this.t1} t2=${this.t2}`];
    for (const o of this.options) {
      if (o.code === Opt6.IAADDR && this.code === Opt6.IA_NA)
        parts.push(`addr(${IaAddrOption.decode(o.value).toString()})`);
      else if (o.code === Opt6.STATUS_CODE) parts.push(`status=${StatusCodeOption.decode(o.value).toString()}`);
      else parts.push(`${o.code}=${o.value.toString('hex')}`);
    }
    return parts.join(' ');
  }
}

export class IaTaOption implements Option6Value {
  constructor(
    readonly iaid: number,
    readonly options: readonly RawOption[] = [],
  ) {}

  static decode(value: Buffer): IaTaOption {
    checkOption(value.length >= 4, Opt6.IA_TA, `an IA_TA needs at least 4 bytes, got ${value.length}`);
    return new IaTaOption(value.readUInt32BE(0), readOptions(value, 4, value.length, 'IA_TA'));
  }

  encode(): Buffer {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(this.iaid >>> 0, 0);
    return Buffer.concat([head, encodeOptions(this.options)]);
  }

  toString(): string {
    return `iaid=${this.iaid} options=${this.options.length}`;
  }
}
