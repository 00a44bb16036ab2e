// What every typed DHCPv6 option value offers: a static decode(value bytes) on its class,
// and encode() / toString() on the instance. Values are the bytes after code and length.

export interface Option6Value {
  /** The value bytes (no code, no length). */
  encode(): Buffer;
  toString(): string;
}

export interface Option6Type<T extends Option6Value> {
  /** Throws a Dhcp6DecodeError when the bytes do not fit the type. */
  decode(value: Buffer, code: number): T;
}
