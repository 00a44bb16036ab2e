// Reading the guest's serial console as it grows: bytes in, complete lines out, each
// tapwire-guest line added to a report. Follows a file (QEMU's -serial file:, or one
// libvirt writes) by polling, since the writer may be another user's process.
import * as fs from 'node:fs';
import { addLine, emptyReport, GuestLine, GuestReport, parseLine } from './report';

const TAIL_LINES = 40;

export class ConsoleReader {
  readonly report: GuestReport = emptyReport();
  /** the last console lines (any kind), for error messages */
  readonly tail: string[] = [];
  private partial = '';

  constructor(private readonly onLine?: (l: GuestLine, raw: string) => void) {}

  feed(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop()!;
    for (const raw of parts) this.line(raw);
  }

  /** The end of the stream: a last line without newline counts too. */
  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
  }

  private line(raw: string): void {
    const text = raw.replace(/\r$/, '');
    this.tail.push(text);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    const l = parseLine(text);
    if (!l) return;
    addLine(this.report, l, text);
    this.onLine?.(l, text);
  }
}

/** Polls `file` every intervalMs, feeding what was appended; stop() reads the rest and ends. */
export function followFile(file: string, reader: ConsoleReader, intervalMs = 100): { stop: () => void } {
  let fd: number | undefined;
  let pos = 0;
  const buf = Buffer.alloc(64 * 1024);
  const decoder = new TextDecoder();
  const poll = (): void => {
    if (fd === undefined) {
      try {
        fd = fs.openSync(file, 'r');
      } catch {
        return; // not there yet
      }
    }
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      pos += n;
      reader.feed(decoder.decode(buf.subarray(0, n), { stream: true }));
    }
  };
  const timer = setInterval(poll, intervalMs);
  return {
    stop(): void {
      clearInterval(timer);
      poll();
      reader.end();
      if (fd !== undefined) fs.closeSync(fd);
    },
  };
}
