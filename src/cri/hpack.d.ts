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
  /** An encoding context (tests use it to speak as a client): write() a header list, read() its block. */
  export interface Compressor {
    write(headers: { name: string; value: string }[]): boolean;
    read(): Buffer | null;
  }
  export const compressor: { create(options: { table: { maxSize: number } }): Compressor };
}
