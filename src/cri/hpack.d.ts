// Types for the part of hpack.js (an HPACK codec, RFC 7541) that authority.ts uses.
declare module 'hpack.js' {
  export interface Header {
    name: string;
    value: string;
    neverIndex: boolean;
  }
  /** A decoding context: write() header blocks, execute() decodes them (throws on bad input), read() fields. */
  export interface Decompressor {
    write(block: Buffer): boolean;
    execute(): void;
    read(): Header | null;
  }
  export const decompressor: { create(options: { table: { maxSize: number } }): Decompressor };
}
